"""The vulnerability function's runtime: phoenix/vulnerabilities/runtime/finding.py."""
