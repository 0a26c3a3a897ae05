"""Which releases an event asks for, and starting them exactly once.

Pure planning (`plan`) is separate from the AWS calls (`read_image`, `start`), which
take their client, so the logic is tested with botocore's Stubber and moto alike.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from phoenix.kernel.names import execution_name, image_name, release_pointer
from phoenix.kernel.registry import read_parameters
from phoenix.release.runtime.events import (
    ImageStateChange,
    PlanSucceeded,
    ReleaseRequested,
    StackStatusChange,
)
from phoenix.release.runtime.models import DEPLOY_TRIGGER

if TYPE_CHECKING:
    from types_boto3_imagebuilder.client import ImagebuilderClient
    from types_boto3_imagebuilder.type_defs import ImageTypeDef
    from types_boto3_ssm.client import SSMClient
    from types_boto3_stepfunctions.client import SFNClient


AMI = r"ami-[0-9a-f]{8,17}"


class RefusedError(Exception):
    """The event asks for nothing phoenix should do; the reason is logged, nothing changes."""


@dataclass(frozen=True)
class ReleaseRequest:
    """The input of one release execution."""

    environment: str
    fleet: str
    ami: str
    trigger: str
    event_id: str
    image: str | None = None

    def execution_name(self) -> str:
        """Deterministic per event and fleet: Step Functions refuses to start it twice."""
        return execution_name(self.fleet, self.event_id)


def image_name_of(arn: str) -> str:
    """`arn:...:image/<name>/<version>/<build>` -> `<name>`."""
    match = re.search(r":image/([^/]+)/\d+\.\d+\.\d+/\d+$", arn)
    if not match:
        raise RefusedError(f"not an image build version ARN: {arn!r}")
    return match.group(1)


def image_region_of(arn: str) -> str:
    """`arn:<partition>:imagebuilder:<region>:<account>:...` -> `<region>`."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "imagebuilder" or not parts[3]:
        raise RefusedError(f"not an Image Builder ARN: {arn!r}")
    return parts[3]


def check_image_region(arn: str, region: str) -> None:
    """Refuse an image not baked in `region`, the one region whose images the trigger
    may read (its GetImage grant) and where its Image Builder client calls. A disaster
    recovery region's trigger receives the primary's events, forwarded to its bus."""
    baked_in = image_region_of(arn)
    if baked_in != region:
        raise RefusedError(f"image {arn!r} was baked in {baked_in}, not in {region}")


def check_image_environment(arn: str, environment: str) -> None:
    """Refuse an image of no pipeline of this environment (`phoenix-<env>-<pipeline>`)
    before the registry is read."""
    name = image_name_of(arn)
    if not name.startswith(image_name(environment, "")):
        raise RefusedError(f"image {name!r} is not from this environment's pipelines")


def subscriptions(registry: dict[str, dict[str, Any]], environment: str) -> dict[str, list[str]]:
    """Image name (`phoenix-<env>-<pipeline>`) -> the fleets its images release to, from
    the registry's specs."""
    subscribed: dict[str, list[str]] = {}
    for fleet, spec in sorted(registry.items()):
        subscribed.setdefault(image_name(environment, str(spec["image_pipeline"])), []).append(
            fleet
        )
    return subscribed


def subscribed_fleets(image_arn: str, subscriptions: dict[str, list[str]]) -> list[str]:
    name = image_name_of(image_arn)
    if name not in subscriptions:
        raise RefusedError(f"no fleet releases the images of {name!r}")
    return subscriptions[name]


def ami_for_region(image: ImageTypeDef, region: str) -> str:
    """The AMI an Image Builder image produced in `region` (GetImage's outputResources)."""
    for ami in image.get("outputResources", {}).get("amis", []):
        if ami.get("region") == region and ami.get("image"):
            return str(ami["image"])
    raise RefusedError(f"image {image.get('arn')!r} has no AMI in {region}")


def read_image(imagebuilder: ImagebuilderClient, arn: str) -> ImageTypeDef:
    """GetImage; an image Image Builder does not know is refused, not an error."""
    try:
        image = imagebuilder.get_image(imageBuildVersionArn=arn)["image"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise RefusedError(f"Image Builder has no image {arn}") from None
        raise
    return image


def plan_image(
    event: ImageStateChange,
    image: ImageTypeDef,
    *,
    environment: str,
    region: str,
    subscriptions: dict[str, list[str]],
) -> list[ReleaseRequest]:
    """One release per fleet subscribed to the image's pipeline."""
    if event.detail.state.status != "AVAILABLE":
        raise RefusedError(f"image state is {event.detail.state.status}, not AVAILABLE")
    (arn,) = event.resources
    ami = ami_for_region(image, region)
    return [
        ReleaseRequest(environment, fleet, ami, "image-available", event.id, image=arn)
        for fleet in subscribed_fleets(arn, subscriptions)
    ]


def pipeline_of(arn: str, environment: str) -> str:
    """The pipeline that baked the image: `phoenix-<env>-<pipeline>` -> `<pipeline>`."""
    return image_name_of(arn).removeprefix(image_name(environment, ""))


def plan_request(
    event: ImageStateChange, image: ImageTypeDef, *, environment: str, plan: str
) -> dict[str, Any]:
    """The input of a plan execution: the image and its AMI in every region it reached."""
    (arn,) = event.resources
    amis = {
        str(ami["region"]): str(ami["image"])
        for ami in image.get("outputResources", {}).get("amis", [])
        if ami.get("region") and ami.get("image")
    }
    if not amis:
        raise RefusedError(f"image {arn!r} has no AMI")
    return {
        "environment": environment,
        "plan": plan,
        "image": arn,
        "amis": amis,
        "event_id": event.id,
        "trigger": "image-available",
    }


def promotion_request(
    event: PlanSucceeded, *, environment: str, promoted_from: str, plans: dict[str, str]
) -> tuple[str, dict[str, Any]]:
    """An earlier environment's plan succeeded: this environment's plan for the same
    pipeline, and its input (the same image and AMIs). Anything else is refused."""
    detail = event.detail
    if not promoted_from:
        raise RefusedError("this environment is promoted from none")
    if detail.environment != promoted_from:
        raise RefusedError(
            f"plan {detail.plan} of {detail.environment} succeeded; "
            f"this environment is promoted from {promoted_from}"
        )
    image_region_of(detail.image)
    if not image_name_of(detail.image).startswith(image_name(promoted_from, "")):
        raise RefusedError(f"image {detail.image!r} is not from {promoted_from}'s pipelines")
    pipeline = pipeline_of(detail.image, promoted_from)
    plan = plans.get(pipeline)
    if plan is None:
        raise RefusedError(f"no plan here releases the images of pipeline {pipeline!r}")
    bad = sorted(ami for ami in detail.amis.values() if not re.fullmatch(AMI, ami))
    if bad:
        raise RefusedError(f"not AMI ids: {', '.join(bad)}")
    foreign = sorted(k for k in detail.keys.values() if k.split(":")[4:5] != [event.account])
    if foreign:
        raise RefusedError(f"keys not of the account that sent the event: {', '.join(foreign)}")
    return plan, {
        "environment": environment,
        "plan": plan,
        "image": detail.image,
        "amis": detail.amis,
        "event_id": event.id,
        "trigger": f"promoted from {promoted_from} (plan run {detail.run})",
        "promoted_from": promoted_from,
        "keys": detail.keys,
    }


def start_plan(stepfunctions: SFNClient, state_machine_arn: str, request: dict[str, Any]) -> bool:
    """Start the plan's run, named after the event; False when it already started."""
    try:
        stepfunctions.start_execution(
            stateMachineArn=state_machine_arn,
            name=execution_name(str(request["event_id"])),
            input=json.dumps(request),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        raise
    return True


def plan_requested(
    event: ReleaseRequested, *, environment: str, fleets: list[str]
) -> list[ReleaseRequest]:
    if event.detail.fleet not in fleets:
        raise RefusedError(f"no fleet {event.detail.fleet!r} in {environment}")
    trigger = f"requested by {event.detail.requested_by}"
    if event.detail.reason:
        trigger += f": {event.detail.reason}"
    return [ReleaseRequest(environment, event.detail.fleet, event.detail.ami, trigger, event.id)]


def check_deploy(event: StackStatusChange, stack_id: str, fleet_stacks: str = "") -> None:
    """Refuse what is not a finished deploy of this region's stack or one of its fleet
    stacks (same account and region, named `<fleet_stacks><n>`)."""
    status = event.detail.status_details.status
    deployed = event.detail.stack_id
    same_place = deployed.split(":")[3:5] == stack_id.split(":")[3:5]
    name = event.detail.stack_name
    fleet_stack = bool(fleet_stacks) and same_place and name.startswith(fleet_stacks)
    if deployed != stack_id and not fleet_stack:
        raise RefusedError(f"stack {deployed} is not this environment's")
    if status != "UPDATE_COMPLETE":
        raise RefusedError(f"stack status is {status}, not UPDATE_COMPLETE")


def deployed_fleets(event: StackStatusChange, registry: dict[str, dict[str, Any]]) -> list[str]:
    """The fleets the deployed stack holds (each fleet's spec names its stack)."""
    stack_name = event.detail.stack_name
    return sorted(f for f, spec in registry.items() if spec.get("stack") == stack_name)


def plan_deploy(
    event: StackStatusChange, *, environment: str, pointers: dict[str, str]
) -> list[ReleaseRequest]:
    """A deploy of a stack with fleets finished: one release per fleet of its pointer AMI
    (the last known good one), so that what the deploy changed in a launch template
    reaches instances through a release (preflight ends it at once when nothing did)."""
    trigger = f"{DEPLOY_TRIGGER}{event.detail.stack_name}"
    return [
        ReleaseRequest(environment, fleet, ami, trigger, event.id)
        for fleet, ami in sorted(pointers.items())
    ]


def read_pointers(ssm: SSMClient, environment: str, fleets: list[str]) -> dict[str, str]:
    """Each fleet's release pointer (GetParameters, ten at a time); a fleet without one
    (its state not deployed) is left out."""
    names = {release_pointer(environment, fleet): fleet for fleet in fleets}
    return {names[name]: value for name, value in read_parameters(ssm, list(names)).items()}


def start(stepfunctions: SFNClient, state_machine_arn: str, request: ReleaseRequest) -> bool:
    """Start the release; False when this event already started it (a duplicate)."""
    try:
        stepfunctions.start_execution(
            stateMachineArn=state_machine_arn,
            name=request.execution_name(),
            input=json.dumps(asdict(request)),
        )
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return False
        raise
    return True
