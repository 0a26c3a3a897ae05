"""Vulnerabilities after release: Inspector's findings on serving instances become
`Fleet Vulnerable` events (construct: phoenix/vulnerabilities/findings.py)."""
