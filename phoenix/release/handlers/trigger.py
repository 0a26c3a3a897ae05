"""Release trigger: an AVAILABLE image, a Release Requested event or a finished deploy
starts releases.

One execution of the release state machine per subscribed fleet (the fleets, and the
pipeline each is subscribed to, are read from the fleet registry), named after the event
and the fleet, so a duplicate delivery starts nothing twice. The image is read where it
was baked (`image_region`: the primary region, also for a disaster recovery region's
trigger, whose events the primary forwards) and released with this region's copy of
its AMI. An event for another pipeline, an image baked in another region, a status
other than AVAILABLE, an image without an AMI in this region, or a malformed event is
logged with the reason and changes nothing.

A deploy of this region's stack or one of its fleet stacks that ends UPDATE_COMPLETE
(`CloudFormation Stack Status Change`) starts a release of the pointer AMI of each fleet
that stack holds (the registry names each fleet's stack), named after the event, so that a
change the deploy made to a launch template reaches instances through a release (its
strategy, gates and rollback); preflight ends one at once when the deploy changed
nothing the fleet runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from phoenix.kernel.clients import Clients
from phoenix.kernel.registry import read_fleets, read_registry
from phoenix.release.runtime import trigger
from phoenix.release.runtime.events import (
    ImageStateChange,
    PlanSucceeded,
    ReleaseRequested,
    StackStatusChange,
)
from phoenix.release.runtime.settings import TriggerSettings

if TYPE_CHECKING:
    from types_boto3_imagebuilder.client import ImagebuilderClient
    from types_boto3_ssm.client import SSMClient
    from types_boto3_stepfunctions.client import SFNClient

logger = Logger()


def handle(
    event: Any,
    settings: TriggerSettings,
    imagebuilder: ImagebuilderClient,
    stepfunctions: SFNClient,
    ssm: SSMClient,
) -> dict[str, Any]:
    event_id = event.get("id") if isinstance(event, dict) else None
    try:
        if not isinstance(event, dict):
            raise trigger.RefusedError(f"the event is a {type(event).__name__}, not an object")
        if event.get("source") == "phoenix" and event.get("detail-type") == "Plan Succeeded":
            return _promote(parse(event=event, model=PlanSucceeded), settings, stepfunctions)
        if event.get("source") == "phoenix":
            requested = parse(event=event, model=ReleaseRequested)
            known = read_fleets(ssm, settings.environment, [requested.detail.fleet])
            requests = trigger.plan_requested(
                requested, environment=settings.environment, fleets=list(known)
            )
        elif event.get("source") == "aws.cloudformation":
            deployed = parse(event=event, model=StackStatusChange)
            trigger.check_deploy(deployed, settings.stack_id, settings.fleet_stacks)
            fleets = trigger.deployed_fleets(deployed, read_registry(ssm, settings.environment))
            requests = trigger.plan_deploy(
                deployed,
                environment=settings.environment,
                pointers=trigger.read_pointers(ssm, settings.environment, fleets),
            )
        else:
            available = parse(event=event, model=ImageStateChange)
            if available.detail.state.status != "AVAILABLE":
                raise trigger.RefusedError(f"image state is {available.detail.state.status}")
            if len(available.resources) != 1:
                raise trigger.RefusedError(
                    f"expected one image ARN in resources, got {len(available.resources)}"
                )
            trigger.check_image_region(available.resources[0], settings.images_in)
            trigger.check_image_environment(available.resources[0], settings.environment)
            subscriptions = trigger.subscriptions(
                read_registry(ssm, settings.environment), settings.environment
            )
            trigger.subscribed_fleets(available.resources[0], subscriptions)
            pipeline = trigger.pipeline_of(available.resources[0], settings.environment)
            plan = settings.plans.get(pipeline)
            if plan is not None:
                return _start_plan(available, plan, settings, imagebuilder, stepfunctions)
            image = trigger.read_image(imagebuilder, available.resources[0])
            requests = trigger.plan_image(
                available,
                image,
                environment=settings.environment,
                region=settings.region,
                subscriptions=subscriptions,
            )
    except (ValidationError, trigger.RefusedError) as refusal:
        logger.warning("event refused", extra={"event_id": event_id, "reason": str(refusal)})
        return {"started": [], "duplicates": [], "refused": str(refusal)}
    started: list[str] = []
    duplicates: list[str] = []
    for request in requests:
        is_new = trigger.start(stepfunctions, settings.state_machine_arn, request)
        (started if is_new else duplicates).append(request.fleet)
        logger.info(
            "release started" if is_new else "release already started by this event",
            extra={"fleet": request.fleet, "ami": request.ami, "event_id": request.event_id},
        )
    return {"started": started, "duplicates": duplicates, "refused": None}


def _start_plan(
    available: ImageStateChange,
    plan: str,
    settings: TriggerSettings,
    imagebuilder: ImagebuilderClient,
    stepfunctions: SFNClient,
) -> dict[str, Any]:
    """The image's pipeline has a plan: one plan execution (in the primary region)."""
    if not settings.runs_plans:
        raise trigger.RefusedError(
            f"the images of this pipeline go through plan {plan!r}, run by the primary region"
        )
    image = trigger.read_image(imagebuilder, available.resources[0])
    request = trigger.plan_request(available, image, environment=settings.environment, plan=plan)
    return _run_plan(stepfunctions, settings, plan, request)


def _promote(
    succeeded: PlanSucceeded, settings: TriggerSettings, stepfunctions: SFNClient
) -> dict[str, Any]:
    """An earlier environment's plan succeeded: start this environment's plan for the
    same pipeline with the same AMIs, named after the event (a duplicate starts nothing)."""
    plan, request = trigger.promotion_request(
        succeeded,
        environment=settings.environment,
        promoted_from=settings.promoted_from,
        plans=settings.plans,
    )
    return _run_plan(stepfunctions, settings, plan, request)


def _run_plan(
    stepfunctions: SFNClient, settings: TriggerSettings, plan: str, request: dict[str, Any]
) -> dict[str, Any]:
    """Start the plan's run for `request`, once (named after its event)."""
    is_new = trigger.start_plan(stepfunctions, settings.plan_state_machine_prefix + plan, request)
    logger.info(
        "plan started" if is_new else "plan already started by this event",
        extra={
            "plan": plan,
            "image": request["image"],
            "trigger": request["trigger"],
            "event_id": request["event_id"],
        },
    )
    return {"started": [], "duplicates": [], "refused": None, "plan": plan if is_new else None}


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = TriggerSettings.from_environ()
    aws = Clients(settings.region)
    # GetImage goes to the region the images are baked in (for a DR region, the
    # primary); the releases start here.
    images = Clients(settings.images_in)
    return handle(event, settings, images.imagebuilder, aws.stepfunctions, aws.ssm)
