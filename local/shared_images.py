"""AMIs shared across accounts: who sees and launches another account's AMI, and how a
launch fails when the key of its encrypted snapshot is not shared (local.shared_keys).

What moto does: one EC2 backend per account and region. A request's account is
MOTO_ACCOUNT_ID when set, else the `x-moto-account-id` header, else the account whose
IAM holds the request's access key (STS AssumeRole of a role ARN in another account
makes such a key: moto's way to switch accounts), else 123456789012
(moto.core.responses.BaseResponse.get_current_account). DescribeImages and every other
AMI lookup read the caller's backend only, so account B never sees account A's AMI,
shared or not (InvalidAMIID.NotFound), while RunInstances never looks the image up
(unless MOTO_ENABLE_AMI_VALIDATION) and launches from any id, shared or not. Launch
permissions (ModifyImageAttribute) are recorded on the AMI and never checked, nor are
key policies.

What AWS documents, and what is emulated here, for an AMI that account A owns in
region R and account B uses in R:
- Amazon EC2 User Guide, "Share an AMI with specific AWS accounts"
  (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/sharingamis-explicit.html):
  B may use the AMI once A grants launch permission to B (`UserId`) or makes it public
  (group `all`); B need not be given its snapshots. Tags A attaches are A's only.
  Here DescribeImages in B answers A's AMI by ImageIds, ExecutableUsers (`self`, B,
  `all`) and Owners (A) once it is shared, with the tags B gave it (none from A);
  RunInstances and Auto Scaling launches from it (a launch template's ImageId) work,
  and the instances get its architecture and platform.
- Without that permission B cannot see it: DescribeImages and RunInstances answer
  InvalidAMIID.NotFound, "The image id '[ami-...]' does not exist" (Amazon EC2 API
  Reference, "Error codes"); an Auto Scaling launch fails its scaling activity with
  "The AMI ID ami-... does not exist. Launching EC2 instance failed." (Amazon EC2 Auto
  Scaling User Guide, "Troubleshoot Amazon EC2 Auto Scaling: AMI issues").
- "If you share an AMI with encrypted volumes, you must also share any customer managed
  keys used to encrypt them" (same EC2 page): a launch from an AMI whose snapshot is
  encrypted also needs A's key, for the caller of RunInstances or, for an Auto Scaling
  launch, B's Auto Scaling service-linked role; local.shared_keys decides that from the
  key's policy and grants (and lets B create a grant on A's key by its ARN).
- Without them the launch fails as AWS reports it: RunInstances answers with the
  instances, already terminated with state reason `Client.InternalError`,
  "Client.InternalError: Client error on launch" (Amazon EC2 User Guide, "Troubleshoot
  instance launch issues", Instance terminates immediately; API Reference, StateReason).
  An Auto Scaling launch fails its scaling activity with that message ("Troubleshoot
  Amazon EC2 Auto Scaling: EC2 instance launch failures", Client.InternalError: Client
  error on launch) and the group keeps no instance from it. DescribeScalingActivities
  (which moto answers with nothing) lists these failed activities, as "Retrieve an error
  message from scaling activities" shows them; no other activity is recorded.

Not emulated (see local.shared_keys for what its key checks leave out): the `pending`
state before termination; sharing with organizations or OUs (never matched);
ModifyImageAttribute's refusal of AMIs with AWS managed keys; CreateLaunchTemplate's
validation warnings; the retries Auto Scaling makes after a failed launch; activities of
deleted groups. An id no account holds keeps moto's behaviour (launched unless
MOTO_ENABLE_AMI_VALIDATION), as do AMIs of the caller's own account. moto registers AMIs
(RegisterImage, CreateImage, and so local.imagebuilder's bakes) with an unencrypted
snapshot of its own: only an AMI whose snapshot was made encrypted reaches the key checks.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Callable, Iterator
from copy import copy
from typing import Any

from moto.autoscaling.models import FakeAutoScalingGroup
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidAMIIdError
from moto.ec2.models import ec2_backends
from moto.ec2.models.amis import Ami
from moto.ec2.models.instances import Instance, InstanceBackend, Reservation, StateReason
from moto.ec2.responses.amis import AmisResponse
from moto.ec2.utils import generic_filter

from local import shared_keys, sim_time
from local.shared_keys import key_allows, snapshot_key

CLIENT_ERROR = "Client.InternalError"
CLIENT_ERROR_MESSAGE = "Client.InternalError: Client error on launch"
_activities: dict[str, list[dict[str, Any]]] = {}  # group ARN -> failed launches


class _LaunchFailedError(Exception):
    """An Auto Scaling launch that failed; the group records it as a scaling activity."""

    def __init__(self, message: str, instances: list[Instance]) -> None:
        super().__init__(message)
        self.message, self.instances = message, instances


class _Launching(threading.local):
    group: FakeAutoScalingGroup | None = None


_launching = _Launching()


def may_launch(ami: Ami, account: str) -> bool:
    """Whether `account` has launch permission on another account's `ami`."""
    return any(
        p.get("UserId") == account or p.get("Group") == "all" for p in ami.launch_permissions
    )


def _others(account: str, region: str) -> Iterator[tuple[str, Any]]:
    """The EC2 backends other accounts have in `region` (none is created)."""
    for owner, regions in list(dict.items(ec2_backends)):
        backend = dict.get(regions, region)
        if owner != account and backend is not None:
            yield owner, backend


def shared_images(account: str, region: str) -> dict[str, Ami]:
    """AMIs that other accounts registered in `region` and `account` may launch (moto's
    stock public AMIs are every account's own, so they are not among them)."""
    return {
        ami.id: ami
        for owner, backend in _others(account, region)
        for ami in list(backend.amis.values())
        if ami.owner_id == owner and may_launch(ami, account)
    }


def foreign_image(account: str, region: str, ami_id: str) -> Ami | None:
    """The AMI `ami_id` of another account in `region`, shared with `account` or not."""
    for owner, backend in _others(account, region):
        ami: Ami | None = backend.amis.get(ami_id)
        if ami is not None and ami.owner_id == owner:
            return ami
    return None


def _launch_image(backend: InstanceBackend, image_id: str | None, kwargs: dict[str, Any]) -> str:
    if image_id or not kwargs.get("launch_template"):
        return image_id or ""
    return str(backend._get_template_from_args(kwargs["launch_template"]).image_id or "")


def _failed_on_launch(instance: Instance) -> None:
    instance.terminate()
    instance._reason = CLIENT_ERROR_MESSAGE
    instance.state_reason = StateReason(CLIENT_ERROR_MESSAGE, CLIENT_ERROR)


def _run_instances(run: Callable[..., Reservation]) -> Callable[..., Reservation]:
    @functools.wraps(run)
    def run_instances(
        self: InstanceBackend, image_id: str | None, count: int, *args: Any, **kwargs: Any
    ) -> Reservation:
        backend: Any = self  # an EC2Backend: InstanceBackend is one of its mixins
        account, wanted = backend.account_id, _launch_image(self, image_id, kwargs)
        mine = wanted in backend.amis
        ami = None if mine else foreign_image(account, backend.region_name, wanted)
        if ami is None:
            return run(self, image_id, count, *args, **kwargs)
        group = _launching.group
        if not may_launch(ami, account):
            if group is not None:
                raise _LaunchFailedError(
                    f"The AMI ID {wanted} does not exist. Launching EC2 instance failed.", []
                )
            raise InvalidAMIIdError(wanted)
        reservation = run(self, image_id, count, *args, **kwargs)
        for instance in reservation.instances:
            instance.architecture, instance.platform = ami.architecture, ami.platform
            instance.virtualization_type = ami.virtualization_type
        if not ami.ebs_snapshot.encrypted:
            return reservation
        key = snapshot_key(ami)
        principal = group.service_linked_role_arn if group is not None else None
        if key is not None and key_allows(key, account, principal):
            return reservation
        for instance in reservation.instances:
            _failed_on_launch(instance)
        if group is not None:
            raise _LaunchFailedError(CLIENT_ERROR_MESSAGE, reservation.instances)
        return reservation

    return run_instances


def _group_launches(
    replace: Callable[[FakeAutoScalingGroup, int, dict[str, str]], None],
) -> Callable[[FakeAutoScalingGroup, int, dict[str, str]], None]:
    @functools.wraps(replace)
    def replace_instances(self: FakeAutoScalingGroup, count: int, tags: dict[str, str]) -> None:
        before = len(self.instance_states)
        _launching.group = self
        try:
            replace(self, count, tags)
        except _LaunchFailedError as failure:
            _record(self, failure, before, before + count)
        finally:
            _launching.group = None

    return replace_instances


def _record(
    group: FakeAutoScalingGroup, failure: _LaunchFailedError, before: int, after: int
) -> None:
    """The failed activities, as "Retrieve an error message from scaling activities"
    shows them: one per instance launched (or one when none could be)."""
    now = sim_time.now()
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    cause = (
        f"At {stamp} an instance was started in response to a difference between desired "
        f"and actual capacity, increasing the capacity from {before} to {after}."
    )
    launched_ids: list[str | None] = [i.id for i in failure.instances]
    for instance_id in launched_ids or [None]:
        launched = f": {instance_id}" if instance_id else ""
        _activities.setdefault(group.arn, []).append(
            {
                "ActivityId": str(uuid.uuid4()),
                "AutoScalingGroupName": group.name,
                "AutoScalingGroupARN": group.arn,
                "Description": (
                    f"Launching a new EC2 instance{launched}.  Status Reason: {failure.message}"
                ),
                "Cause": cause,
                "StartTime": now,
                "EndTime": now,
                "StatusCode": "Failed",
                "StatusMessage": failure.message,
                "Progress": 100,
            }
        )


def _describe_scaling_activities(self: AutoScalingResponse) -> ActionResult:
    name = self._get_param("AutoScalingGroupName")
    wanted = set(self._get_param("ActivityIds", []))
    groups = self.autoscaling_backend.autoscaling_groups
    chosen = [groups[name]] if name in groups else [] if name else list(groups.values())
    activities = [
        a
        for group in chosen
        for a in _activities.get(group.arn, [])
        if not wanted or a["ActivityId"] in wanted
    ]
    activities.sort(key=lambda a: a["StartTime"], reverse=True)  # the latest first
    return ActionResult({"Activities": activities})


def _as_seen_by(ami: Ami, backend: Any) -> Ami:
    """The shared AMI with the viewer's own tags on it, never its owner's."""
    view = copy(ami)
    view.ec2_backend = backend
    return view


def visible_images(
    backend: Any,
    ami_ids: list[str],
    filters: dict[str, Any],
    exec_users: list[str],
    owners: list[str],
) -> list[Ami]:
    """DescribeImages for the caller's account: its own (moto's answer) and those shared
    with it by other accounts of the region."""
    account = backend.account_id
    shared = shared_images(account, backend.region_name)
    if ami_ids:
        theirs = [shared[i] for i in ami_ids if i in shared]
        mine = [i for i in ami_ids if i not in shared]
        own: list[Ami] = backend.describe_images(ami_ids=mine) if mine else []
    else:
        own = backend.describe_images(filters=filters, exec_users=exec_users, owners=owners)
        theirs = list(shared.values())
        if exec_users:
            users = {account if u == "self" else u for u in exec_users}
            explicit = account in users  # launch permission given to the caller by id
            theirs = [
                a
                for a in theirs
                if (a.is_public and "all" in users)
                or (explicit and {"UserId": account} in a.launch_permissions)
            ]
        if owners:
            theirs = [a for a in theirs if a.owner_id in owners or a.owner_alias in owners]
    views = [_as_seen_by(a, backend) for a in theirs]
    if filters and not ami_ids:
        views = generic_filter(filters, views)
    return own + views


def _describe_images(self: AmisResponse) -> ActionResult:
    self.error_on_dryrun()
    images = visible_images(
        self.ec2_backend,
        self._get_param("ImageIds", []),
        self._filters_from_querystring(),
        self._get_param("ExecutableUsers", []),
        self._get_param("Owners", []),
    )
    return ActionResult({"Images": images})


@functools.cache
def install() -> None:
    """Share AMIs across accounts in this process (once), with the CreateGrant across
    accounts their encrypted snapshots' keys need (local.shared_keys)."""
    InstanceBackend.run_instances = _run_instances(InstanceBackend.run_instances)  # type: ignore[method-assign]
    FakeAutoScalingGroup.replace_autoscaling_group_instances = _group_launches(  # type: ignore[method-assign,assignment]
        FakeAutoScalingGroup.replace_autoscaling_group_instances
    )
    AmisResponse.describe_images = _describe_images  # type: ignore[method-assign]
    AutoScalingResponse.describe_scaling_activities = _describe_scaling_activities  # type: ignore[method-assign]
    shared_keys.install()
