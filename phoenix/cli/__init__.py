"""The `phoenix` command for the people on call (main.py; docs/operations.md)."""
