"""Drift detection: a scheduled check of what each fleet runs against what the release
controller says it should (construct: phoenix/drift/drift_check.py)."""
