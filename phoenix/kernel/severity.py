"""Inspector's finding severities, lowest first (Amazon Inspector API reference,
Finding: severity; UNTRIAGED ranks as none of them), and the one comparison phoenix makes
with them: a finding at or above a threshold (an image build's gate, a fleet's
`cve_severity` at release time and on a serving instance)."""

from __future__ import annotations

SEVERITIES = ("INFORMATIONAL", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def at_or_above(severity: str, threshold: str) -> bool:
    """Whether `severity` is `threshold` or more severe (an unknown one never is)."""
    return severity in SEVERITIES and SEVERITIES.index(severity) >= SEVERITIES.index(threshold)
