"""Inspector findings on this environment's fleets (phoenix/vulnerabilities/runtime/finding.py).

Event: `Inspector2 Finding` (source `aws.inspector2`). Anything else, or a finding that
concerns no fleet here at its threshold, is logged and refused before any change.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from phoenix.kernel.clients import Clients
from phoenix.vulnerabilities.runtime import finding
from phoenix.vulnerabilities.runtime.finding import VulnerabilitySettings

logger = Logger()
metrics = Metrics()


def handle(event: Any, settings: VulnerabilitySettings, aws: Clients) -> dict[str, Any]:
    try:
        found = finding.parse(event, settings, aws)
    except (ValidationError, finding.RefusedError) as refusal:
        reason = str(refusal)[:500]
        logger.warning("event refused", extra={"reason": reason})
        return {"action": "refused", "reason": reason}
    logger.append_keys(fleet=found.fleet, vulnerability=found.vulnerability)
    if not finding.record(aws, settings, found):
        logger.info("finding known already", extra={"ami": found.ami})
        return {"action": "known", "fleet": found.fleet}
    metrics.add_metric(name="FleetsVulnerable", unit=MetricUnit.Count, value=1)
    logger.warning("fleet vulnerable", extra={"ami": found.ami, "severity": found.severity})
    return {"action": "reported", "fleet": found.fleet, "ami": found.ami}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = VulnerabilitySettings.from_environ()
    return handle(event, settings, Clients(settings.region))
