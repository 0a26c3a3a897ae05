"""The preflight's scan gate: an image this environment baked is released only when its
Inspector scan completed without a finding at or above the fleet's `cve_severity`
(docs/hygiene.md). The pipelines scan every image (phoenix/images/pipeline.py); a build's
own Inspector gate fails it at the pipeline's `fail_on_severity`, and this gate holds the
fleet's threshold at release time, when a fleet may be stricter.

Not gated: a rollback release (it goes back to what served), a release of an AMI by hand
(no image names it), and an image promoted from an earlier environment (its scan was
that environment's, and its image is in that environment's account).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from phoenix.kernel.names import image_name
from phoenix.kernel.severity import at_or_above
from phoenix.release.runtime.models import ReleaseState
from phoenix.release.runtime.preflight import PreflightFailedError
from phoenix.release.runtime.trigger import image_name_of, image_region_of

if TYPE_CHECKING:
    from types_boto3_imagebuilder.client import ImagebuilderClient
    from types_boto3_imagebuilder.type_defs import FilterTypeDef

# ImageScanState's statuses (Image Builder API reference) that end without a result.
UNFINISHED = ("ABANDONED", "FAILED", "TIMED_OUT")


def check_image_scan(
    state: ReleaseState, imagebuilder_in: Callable[[str], ImagebuilderClient]
) -> None:
    """PreflightFailedError when the image's scan failed, has not finished, or found what
    the fleet refuses; `imagebuilder_in(region)`: the client for the image's region."""
    image = state.image
    if state.is_rollback or not image:
        return
    if not image_name_of(image).startswith(image_name(state.environment, "")):
        return
    client = imagebuilder_in(image_region_of(image))
    scan = client.get_image(imageBuildVersionArn=image)["image"].get("scanState") or {}
    status = scan.get("status")
    if status is None:
        return  # not scanned: the pipeline has scanning off
    if status != "COMPLETED":
        why = "did not finish" if status in UNFINISHED else "has not finished"
        raise PreflightFailedError("image scan", image, f"its scan {why} ({status})")
    threshold = state.fleet_spec.cve_severity
    refused: list[str] = []
    only_this: list[FilterTypeDef] = [{"name": "imageBuildVersionArn", "values": [image]}]
    page = client.list_image_scan_findings(filters=only_this)
    while True:
        for finding in page.get("findings", []):
            severity = str(finding.get("severity", ""))
            if at_or_above(severity, threshold):
                details = finding.get("packageVulnerabilityDetails")
                named = details["vulnerabilityId"] if details else finding.get("title", "?")
                refused.append(f"{named} {severity}")
        token = page.get("nextToken")
        if not token:
            break
        page = client.list_image_scan_findings(filters=only_this, nextToken=token)
    if refused:
        shown = ", ".join(sorted(refused)[:5])
        raise PreflightFailedError(
            "image scan", image, f"{len(refused)} findings at or above {threshold}: {shown}"
        )
