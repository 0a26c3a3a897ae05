"""The drift check's Lambda handler."""
