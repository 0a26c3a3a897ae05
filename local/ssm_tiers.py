"""Parameter Store's value limits by tier, which moto does not enforce.

AWS Systems Manager User Guide, "Managing parameter tiers": a standard parameter's value
holds at most 4 KB, an advanced parameter's 8 KB; a standard parameter may be changed to
advanced, never back. PutParameter refuses a larger value with a ValidationException
("Standard tier parameters support a maximum parameter value of 4096 characters. To
create a larger parameter value, upgrade the parameter to use the advanced-parameter
tier."). With the tier `Intelligent-Tiering`, Parameter Store makes a parameter advanced
when its value needs it. Here the same checks run before moto writes (the PutParameter
of local/ssm_image_parameters.py calls `tier_for` first), so a fleet spec
(phoenix/release/spec.py) too large for its parameter fails its deploy as on AWS.
"""

from __future__ import annotations

from moto.ssm.exceptions import ValidationException
from moto.ssm.models import SimpleSystemManagerBackend

STANDARD_LIMIT = 4096
ADVANCED_LIMIT = 8192


def tier_for(backend: SimpleSystemManagerBackend, name: str, value: str, tier: str | None) -> str:
    """The tier a write leaves the parameter in; ValidationException when the value does
    not fit it, or the write would take an advanced parameter back to standard."""
    current = backend.get_parameter(name)
    previous = current.tier if current is not None else None
    wanted = tier or previous or backend.default_parameter_tier
    if wanted == "Intelligent-Tiering":
        wanted = "Advanced" if len(value) > STANDARD_LIMIT or previous == "Advanced" else "Standard"
    if wanted == "Standard" and previous == "Advanced":
        raise ValidationException(
            "This parameter uses the advanced-parameter tier. You can't downgrade a parameter "
            "from the advanced-parameter tier to the standard-parameter tier."
        )
    if wanted == "Standard" and len(value) > STANDARD_LIMIT:
        raise ValidationException(
            "Standard tier parameters support a maximum parameter value of 4096 characters. "
            "To create a larger parameter value, upgrade the parameter to use the "
            "advanced-parameter tier."
        )
    if len(value) > ADVANCED_LIMIT:
        raise ValidationException(
            f"1 validation error detected: Value at 'value' failed to satisfy constraint: "
            f"Member must have length less than or equal to {ADVANCED_LIMIT}"
        )
    return wanted
