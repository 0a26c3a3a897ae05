"""What StartInstanceRefresh refuses in the embedded AWS (local.instance_refresh), with
Auto Scaling's ValidationError, following the AWS documentation.

- Preferences are checked as RefreshPreferences documents them (API reference,
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_RefreshPreferences.html):
  MinHealthyPercentage from 0 to 100; MaxHealthyPercentage from 100 to 200, only with
  MinHealthyPercentage and at most 100 above it; CheckpointPercentages unique values
  from 1 to 100 in ascending order (botocore's model), and CheckpointDelay only with
  them; AutoRollback only with a DesiredConfiguration launch template of an explicit
  version (not $Latest or $Default).
- "If the alarm state is `INSUFFICIENT_DATA` or `ALARM`, you receive an error when you
  try to start the instance refresh"; "You can choose a maximum of 10 alarms" (user
  guide, "Undo changes with a manual or auto rollback", Considerations).
- The desired launch template and its version must exist.
"""

from __future__ import annotations

from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import AutoScalingBackend
from moto.cloudwatch.models import cloudwatch_backends

MAX_ALARMS = 10


def validate_preferences(preferences: dict[str, Any], desired: dict[str, Any] | None) -> None:
    """The checks AWS documents for StartInstanceRefresh preferences."""
    minimum = preferences.get("MinHealthyPercentage")
    maximum = preferences.get("MaxHealthyPercentage")
    if minimum is not None and not 0 <= int(minimum) <= 100:
        raise ValidationError("MinHealthyPercentage must be between 0 and 100.")
    if maximum is not None:
        if minimum is None:
            raise ValidationError(
                "You must specify MinHealthyPercentage when you specify MaxHealthyPercentage."
            )
        if not 100 <= int(maximum) <= 200:
            raise ValidationError("MaxHealthyPercentage must be between 100 and 200.")
        if int(maximum) - int(minimum) > 100:
            raise ValidationError(
                "The difference between MaxHealthyPercentage and MinHealthyPercentage "
                "cannot be greater than 100."
            )
    checkpoints = [int(p) for p in preferences.get("CheckpointPercentages", [])]
    if any(not 1 <= p <= 100 for p in checkpoints) or checkpoints != sorted(set(checkpoints)):
        raise ValidationError(
            "CheckpointPercentages must be unique values from 1 to 100 in ascending order."
        )
    if "CheckpointDelay" in preferences and not checkpoints:
        raise ValidationError("CheckpointDelay requires CheckpointPercentages.")
    if preferences.get("AutoRollback"):
        template = (desired or {}).get("LaunchTemplate")
        if not template:
            raise ValidationError("AutoRollback requires a DesiredConfiguration launch template.")
        if str(template.get("Version", "$Default")) in {"$Latest", "$Default"}:
            raise ValidationError(
                "AutoRollback requires an explicit launch template version, not "
                f"{template.get('Version', '$Default')}."
            )


def check_alarms(account: str, region: str, preferences: dict[str, Any]) -> None:
    """ "You can choose a maximum of 10 alarms"; "If the alarm state is INSUFFICIENT_DATA
    or ALARM, you receive an error when you try to start the instance refresh" (user
    guide, "Undo changes with a manual or auto rollback", Considerations)."""
    names = list(preferences.get("AlarmSpecification", {}).get("Alarms", []))
    if len(names) > MAX_ALARMS:
        raise ValidationError(f"You can specify up to {MAX_ALARMS} alarms.")
    alarms = cloudwatch_backends[account][region].alarms
    for name in names:
        alarm = alarms.get(name)
        if alarm is not None and alarm.state_value in {"ALARM", "INSUFFICIENT_DATA"}:
            raise ValidationError(
                f"The alarm {name} is in the {alarm.state_value} state. Alarms must be in "
                "the OK state to start an instance refresh."
            )


def check_template(backend: AutoScalingBackend, target: dict[str, Any]) -> None:
    """The desired launch template and version must exist (Auto Scaling's ValidationError)."""
    template_id = target.get("LaunchTemplateId", "")
    version = str(target.get("Version", "$Default"))
    try:
        template = backend.ec2_backend.get_launch_template(template_id)
    except Exception as error:
        raise ValidationError(
            "You must use a valid fully-formed launch template. The specified launch "
            f"template, with template ID {template_id}, does not exist."
        ) from error
    known = {str(v.number) for v in template.versions} | {"$Latest", "$Default"}
    if version not in known:
        raise ValidationError(
            "You must use a valid fully-formed launch template. The specified version "
            f"{version} of launch template {template_id} does not exist."
        )
