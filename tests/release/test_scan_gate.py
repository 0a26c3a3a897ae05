"""The preflight's scan gate (phoenix/release/runtime/scan_gate.py) against botocore's
Image Builder model (Stubber): what it refuses, and what it does not look at."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from phoenix.release.runtime.models import ReleaseState
from phoenix.release.runtime.preflight import PreflightFailedError
from phoenix.release.runtime.scan_gate import check_image_scan
from tests.release.release_state import fleet_spec, release_state

IMAGE = "arn:aws:imagebuilder:us-east-1:123456789012:image/phoenix-sandbox-golden/1.0.0/1"
PROMOTED = "arn:aws:imagebuilder:us-east-1:210987654321:image/phoenix-staging-golden/1.0.0/1"
ONLY = {"filters": [{"name": "imageBuildVersionArn", "values": [IMAGE]}]}


def _state(image: str | None = IMAGE, threshold: str = "HIGH", **more: Any) -> ReleaseState:
    spec = fleet_spec("canary") | {"cve_severity": threshold}
    return ReleaseState.model_validate(release_state(image=image, fleet_spec=spec, **more))


def _finding(severity: str, cve: str) -> dict[str, Any]:
    return {"severity": severity, "packageVulnerabilityDetails": {
        "vulnerabilityId": cve, "source": "NVD", "vulnerablePackages": []}}  # fmt: skip


def _run(state: ReleaseState, scan: dict[str, Any] | None, *pages: list[Any]) -> Stubber:
    client = boto3.client("imagebuilder", region_name="us-east-1")
    stubber = Stubber(client)
    if scan is not None:
        image = {"arn": IMAGE} | ({"scanState": scan} if scan else {})
        answer = {"requestId": "r", "image": image}
        stubber.add_response("get_image", answer, {"imageBuildVersionArn": IMAGE})
    for n, findings in enumerate(pages):
        more = {"nextToken": f"t{n + 1}"} if n + 1 < len(pages) else {}
        expected = ONLY | ({"nextToken": f"t{n}"} if n else {})
        page = {"requestId": "r", "findings": findings, **more}
        stubber.add_response("list_image_scan_findings", page, expected)
    with stubber:
        check_image_scan(state, lambda _region: client)
    return stubber


def test_a_clean_scan_and_findings_below_the_fleet_s_threshold_pass() -> None:
    _run(_state(), {"status": "COMPLETED"}, []).assert_no_pending_responses()
    below = [_finding("MEDIUM", "CVE-1"), _finding("LOW", "CVE-2")]
    _run(_state(), {"status": "COMPLETED"}, below, []).assert_no_pending_responses()


def test_a_finding_at_the_threshold_on_any_page_is_refused_naming_it() -> None:
    pages = [[_finding("LOW", "CVE-1")], [_finding("HIGH", "CVE-9")]]
    with pytest.raises(PreflightFailedError, match=r"1 findings at or above HIGH: CVE-9 HIGH"):
        _run(_state(), {"status": "COMPLETED"}, *pages)
    with pytest.raises(PreflightFailedError, match="CVE-3 MEDIUM"):
        _run(_state(threshold="MEDIUM"), {"status": "COMPLETED"}, [_finding("MEDIUM", "CVE-3")])


SCANS = [("FAILED", "did not finish"), ("SCANNING", "has not finished")]


@pytest.mark.parametrize(("status", "why"), SCANS)
def test_a_scan_that_failed_or_runs_still_is_refused(status: str, why: str) -> None:
    with pytest.raises(PreflightFailedError, match=f"its scan {why} \\({status}\\)"):
        _run(_state(), {"status": status})


def test_an_image_without_scanning_passes_after_one_read() -> None:
    _run(_state(), {}).assert_no_pending_responses()


@pytest.mark.parametrize(
    "state",
    [
        _state(image=None),  # an AMI released by hand
        _state(image=PROMOTED),  # an earlier environment's image: its scan was its own
        _state(trigger="rollback of web-1: requested by tests"),  # going back
    ],
)
def test_what_the_gate_does_not_look_at_makes_no_call(state: ReleaseState) -> None:
    _run(state, None).assert_no_pending_responses()
