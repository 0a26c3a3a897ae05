"""Inspector findings in the embedded AWS: AWS's sample `Inspector2 Finding`, made ACTIVE
and HIGH on one of api's serving instances, reaches the vulnerability function through
its rule and becomes one `Fleet Vulnerable` event, however often Inspector sends it; web
rebuilds on a critical CVE, so its pipeline bakes an image that its fleets release."""

from __future__ import annotations

import json
from typing import Any

from local.embedded import EmbeddedAws
from local.fleet_view import FleetView, release_item
from tests.integration.fleet_view import serving_instance, subscribed
from tests.sample_events import sample_event


def _finding(instance: str, severity: str, cve: str = "") -> dict[str, Any]:
    """AWS's sample finding, ACTIVE at `severity` on `instance` (and on `cve`), as
    Inspector puts it on the bus."""
    finding = sample_event("inspector2_finding_ec2")
    finding["detail"] |= {"status": "ACTIVE", "severity": severity}
    if cve:
        finding["detail"]["packageVulnerabilityDetails"]["vulnerabilityId"] = cve
    finding["detail"]["resources"][0]["id"] = instance
    return {
        "Source": finding["source"],
        "DetailType": finding["detail-type"],
        "Detail": json.dumps(finding["detail"]),
        "Resources": finding["resources"],
    }


def test_a_finding_on_a_serving_instance_is_reported_once(aws: EmbeddedAws) -> None:
    # Given a queue that receives every Fleet Vulnerable event, and a HIGH finding on one
    # of api's serving instances
    pattern = {"source": ["phoenix"], "detail-type": ["Fleet Vulnerable"]}
    instance = serving_instance(aws, "api")
    entry = _finding(instance, "HIGH")
    with subscribed(aws, "vulnerable", pattern) as url:
        # When Inspector sends it, then sends it again (an update)
        for _ in range(2):
            assert aws.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
            aws.drain()
        messages = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10)

    # Then one Fleet Vulnerable names api, the AMI its instance runs and the CVE
    (sent,) = [json.loads(m["Body"])["detail"] for m in messages.get("Messages", [])]
    assert (sent["fleet"], sent["instance"]) == ("api", instance)
    assert sent["ami"] in FleetView.read(aws, "api").serving_amis
    assert (sent["vulnerability"], sent["severity"]) == ("CVE-2024-29069", "HIGH")
    assert sent["action"] == "reported"  # api does not rebuild on a CVE


def test_a_fleet_that_rebuilds_on_a_cve_gets_a_patched_image_through_its_release(
    aws: EmbeddedAws,
) -> None:
    # Given web, which rebuilds on a critical CVE (tests/integration/config), and a new
    # critical finding on one of its instances
    before = {fleet: FleetView.read(aws, fleet).pointer for fleet in ("web", "api", "worker")}
    entry = _finding(serving_instance(aws, "web"), "CRITICAL", "CVE-2026-0001")

    # When Inspector sends it
    assert aws.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0
    aws.drain()
    aws.settle()

    # Then the golden pipeline baked a new image, and every fleet that follows it
    # released its AMI through its own release
    after = {fleet: FleetView.read(aws, fleet) for fleet in before}
    (patched,) = {view.pointer for view in after.values()}
    assert patched not in before.values()
    for fleet, view in after.items():
        assert view.serving_amis == {patched}, fleet


def test_an_image_whose_scan_found_what_a_fleet_refuses_is_not_released_to_it(
    aws: EmbeddedAws,
) -> None:
    # Given the fleets' thresholds: web refuses CRITICAL findings, api and worker HIGH
    before = {fleet: FleetView.read(aws, fleet).pointer for fleet in ("web", "api", "worker")}
    started = set(aws.executions())

    # When golden bakes an image whose scan found a HIGH vulnerability
    baked = aws.bake(pipeline="golden", version="14.0.0", scan="HIGH")
    aws.settle()

    # Then web releases it, and api's and worker's preflights refuse it, naming the scan
    after = {fleet: FleetView.read(aws, fleet) for fleet in before}
    assert after["web"].serving_amis == {baked.ami}
    for fleet in ("api", "worker"):
        assert after[fleet].serving_amis == {before[fleet]}, fleet
        (execution,) = [
            e for arn, e in aws.executions().items()
            if arn not in started and e["name"].startswith(f"{fleet}-")
        ]  # fmt: skip
        reason = release_item(aws, fleet, execution["name"])["reason"]
        assert "preflight check 'image scan' failed" in reason, reason
        assert "findings at or above HIGH: CVE-2026-0001 HIGH" in reason, reason
