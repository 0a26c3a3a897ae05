"""DynamoDB attribute values as Python values and back, and the fleet item's update when
a release ends on a good AMI (phoenix/kernel/ledger.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef


def plain(item: Mapping[str, AttributeValueTypeDef]) -> dict[str, Any]:
    """DynamoDB's typed attributes as Python values (S, N, BOOL, L and M)."""
    return {name: _value(typed) for name, typed in item.items()}


def _value(typed: Mapping[str, Any]) -> Any:
    (kind, value), *_ = typed.items()
    if kind == "NULL":
        return None
    if kind == "N":
        return float(value)
    if kind == "L":
        return [_value(v) for v in value]
    if kind == "M":
        return plain(value)
    return value


def typed(value: Any) -> AttributeValueTypeDef:
    """A Python value (str, bool, int/float, list, dict, None) as a DynamoDB attribute."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return {"N": str(value)}
    if isinstance(value, list):
        return {"L": [typed(v) for v in value]}
    if isinstance(value, dict):
        return {"M": {str(k): typed(v) for k, v in value.items()}}
    return {"S": str(value)}


def good_end(
    release_id: str, outcome: str, moment: str, good_ami: str, extra: dict[str, Any]
) -> tuple[str, dict[str, AttributeValueTypeDef]]:
    """The fleet item's update when `release_id` ended on `good_ami`: its last release and
    outcome, the flight gone, and `extra` (name -> value; None leaves it out) set; a
    success with no window (or any other end) removes the window."""
    settings = {name: value for name, value in extra.items() if value is not None}
    assignments = "".join(f", {name} = :{name}" for name in settings)
    update = (
        "SET last_good_ami = :ami, last_release = :release, last_outcome = :outcome, "
        f"last_ended_at = :at{assignments} REMOVE flight"
        + ("" if "warm_slot" in settings else ", warm_slot")
    )
    values: dict[str, AttributeValueTypeDef] = {
        ":ami": {"S": good_ami},
        ":release": {"S": release_id},
        ":outcome": {"S": outcome},
        ":at": {"S": moment},
        **{f":{name}": typed(value) for name, value in settings.items()},
    }
    return update, values
