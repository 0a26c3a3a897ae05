"""Value types shared by the config models: names, regions, CIDR blocks, strict models."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")


def _region(value: str) -> str:
    if not _REGION.match(value):
        raise ValueError("is not an AWS region name such as us-east-1")
    return value


def _private_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"is not an IPv4 CIDR block ({err})") from None
    if not 16 <= network.prefixlen <= 24:
        raise ValueError("must have a prefix between /16 and /24 (VPC limits, room for subnets)")
    if not network.is_private:
        raise ValueError("must be a private (RFC 1918) range")
    return str(network)


Region = Annotated[str, AfterValidator(_region)]
Cidr = Annotated[str, AfterValidator(_private_cidr)]
Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,23}$")]
AccountId = Annotated[str, Field(pattern=r"^\d{12}$")]
SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]
Architecture = Literal["arm64", "x86_64"]
Percent = Annotated[int, Field(ge=1, le=100)]


class StrictModel(BaseModel):
    """Unknown keys are errors: a misspelt option must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def unique_names(field: str, names: list[Any]) -> None:
    seen: set[Any] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{field}: {name!r} appears more than once")
        seen.add(name)
