"""The vulnerability function's Lambda handler."""
