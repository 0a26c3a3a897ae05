"""The drift check's runtime: phoenix/drift/runtime/check.py."""
