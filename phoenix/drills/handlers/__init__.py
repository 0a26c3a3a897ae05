"""The drill function's Lambda handler."""
