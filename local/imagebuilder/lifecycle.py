"""Image Builder's lifecycle policy execution, for the AMI image policies phoenix deploys.

Image Builder "runs enabled lifecycle policies once per day" and "manages the exact
execution time" (Image Builder User Guide, "How lifecycle policy execution works"), so
there is no API that starts one: the embedded AWS runs one when a test or the rehearsal
says so (`run`), at a time it names. What one execution does, as that page and "How
lifecycle management rules work for Image Builder image resources" describe it:
- the policy's resources are the images of the recipes its `resourceSelection` names
  (a recipe name and a semantic version, whose parts may be the wildcard `x`), each
  recipe version counted apart;
- a delete rule by count keeps the newest `filter.value` images of each recipe version:
  they fill the retention slots before any exclusion rule is looked at;
- beyond them, an AMI is excluded from the action when it carries any of the
  `exclusionRules.amis.tagMap` tags (each Region's copy has its own tags) or was
  launched within its `lastLaunched` period; an excluded AMI takes no slot;
- the other AMIs are deregistered, with their snapshots when `includeResources`
  says so, and the image resource is deleted once none of its AMIs is left.

Refused rather than guessed (ValueError): other actions and filters, image-level
exclusion rules, and the AMI exclusion rules phoenix does not set (`isPublic`,
`regions`, `sharedAccounts`). An AMI's last launch is the latest `LaunchTime` of the
instances of that Region launched from it (EC2 keeps the AMI's `LastLaunchedTime` the
same way: "the date and time, in ISO 8601 date-time format, when the AMI was last used
to launch an EC2 instance"; EC2 User Guide, "Check when an Amazon EC2 AMI was last used").
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from moto.ec2.models import ec2_backends

from local.imagebuilder.models import Image, ImageBuilderBackend, imagebuilder_backends

UNITS = {"DAYS": timedelta(days=1), "WEEKS": timedelta(weeks=1)}
EMULATED_EXCLUSIONS = {"TagMap", "LastLaunched"}


@dataclass
class Execution:
    """What one execution of one policy did: AMIs by Region, image ARNs."""

    policy: str
    kept: dict[str, set[str]] = field(default_factory=dict)  # retention slots
    excluded: dict[str, set[str]] = field(default_factory=dict)
    deregistered: dict[str, set[str]] = field(default_factory=dict)
    deleted_images: set[str] = field(default_factory=set)


def run(account: str, region: str, now: datetime) -> list[Execution]:
    """Run every enabled AMI lifecycle policy recorded in `region` once, at `now`
    (naive UTC, moto's convention)."""
    backend = imagebuilder_backends[account][region]
    return [
        _execute(backend, arn, policy, now)
        for arn, policy in list(backend.resources.items())
        if ":lifecycle-policy/" in arn and policy.get("Status", "ENABLED") == "ENABLED"
    ]


def _execute(
    backend: ImageBuilderBackend, arn: str, policy: dict[str, Any], now: datetime
) -> Execution:
    if policy.get("ResourceType") != "AMI_IMAGE":
        raise ValueError(f"{arn}: only AMI_IMAGE lifecycle policies are emulated")
    execution = Execution(arn)
    for detail in policy.get("PolicyDetails", []):
        rule = _rule(arn, detail)
        for images in _recipe_versions(backend, policy).values():
            newest = sorted(images, key=_age, reverse=True)
            for image in newest[: rule.count]:
                for copy, ami in _amis(image).items():
                    execution.kept.setdefault(copy, set()).add(ami)
            for image in newest[rule.count :]:
                _act(backend, image, rule, now, execution)
    return execution


@dataclass(frozen=True)
class _Rule:
    count: int
    resources: dict[str, Any]  # the action's includeResources
    amis: dict[str, Any]  # the AMI exclusion rules


def _rule(arn: str, detail: dict[str, Any]) -> _Rule:
    action, rule = detail.get("Action", {}), detail.get("Filter", {})
    if action.get("Type") != "DELETE" or rule.get("Type") != "COUNT":
        raise ValueError(f"{arn}: only a DELETE action with a COUNT filter is emulated")
    exclusions = detail.get("ExclusionRules", {})
    amis = exclusions.get("Amis", {})
    unknown = (set(exclusions) - {"Amis"}) | (set(amis) - EMULATED_EXCLUSIONS)
    if unknown:
        raise ValueError(f"{arn}: exclusion rules not emulated: {', '.join(sorted(unknown))}")
    return _Rule(int(rule["Value"]), action.get("IncludeResources", {}), amis)


def _recipe_versions(
    backend: ImageBuilderBackend, policy: dict[str, Any]
) -> dict[tuple[str, str], list[Image]]:
    recipes = policy.get("ResourceSelection", {}).get("Recipes", [])
    selected: dict[tuple[str, str], list[Image]] = {}
    for image in backend.images.values():
        if any(
            image.name == str(r["Name"]).lower()
            and fnmatch.fnmatchcase(image.version, str(r["SemanticVersion"]).replace("x", "*"))
            for r in recipes
        ):
            selected.setdefault((image.name, image.version), []).append(image)
    return selected


def _age(image: Image) -> tuple[datetime, int]:
    """Creation time, then build number (the last part of an image's ARN) for a tie."""
    return image.created, int(image.arn.rsplit("/", 1)[1])


def _amis(image: Image) -> dict[str, str]:
    return {image.region: image.ami_id, **image.copies}


def _act(
    backend: ImageBuilderBackend,
    image: Image,
    rule: _Rule,
    now: datetime,
    execution: Execution,
) -> None:
    resources = rule.resources
    left = False
    for region, ami in _amis(image).items():
        ec2 = ec2_backends[backend.account_id][region]
        if ami not in ec2.amis:
            continue  # deregistered already, by someone else
        if _excluded(ec2, ami, rule.amis, now):
            execution.excluded.setdefault(region, set()).add(ami)
            left = True
            continue
        if not resources.get("Amis"):
            left = True
            continue
        snapshot = getattr(ec2.amis[ami], "ebs_snapshot", None)
        ec2.deregister_image(ami)
        if snapshot is not None and resources.get("Snapshots"):
            ec2.delete_snapshot(snapshot.id)
        execution.deregistered.setdefault(region, set()).add(ami)
    if not left:
        backend.images.pop(image.arn, None)
        execution.deleted_images.add(image.arn)


def _excluded(ec2: Any, ami: str, rules: dict[str, Any], now: datetime) -> bool:
    tags = ec2.tags.get(ami, {})
    if any(tags.get(key) == value for key, value in rules.get("TagMap", {}).items()):
        return True
    period = rules.get("LastLaunched")
    if not period:
        return False
    unit = str(period["Unit"])
    if unit not in UNITS:
        raise ValueError(f"lastLaunched unit {unit} is not emulated")
    launched = [i.launch_time for i in ec2.all_instances() if i.image_id == ami]
    return bool(launched) and max(launched) > now - int(period["Value"]) * UNITS[unit]
