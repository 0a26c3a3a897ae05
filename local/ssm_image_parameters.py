"""`aws:ec2:image` parameters in the embedded AWS, validated as Parameter Store does.

AWS Systems Manager User Guide, "Native parameter support for Amazon Machine Image IDs":
a String parameter of data type `aws:ec2:image` is not written when PutParameter
answers. Parameter Store validates the value asynchronously (the AMI ID's format, and that
the AMI exists and is available to the caller), and the caller needs
`ec2:DescribeImages` as well as `ssm:PutParameter`. When validation fails the parameter
is neither created nor updated, although PutParameter has already returned a version
(the failure shows only in an EventBridge notification or a later GetParameter).
Updating such a parameter with a new AMI ID validates it again.

moto writes the value at once. Here PutParameter still answers at once with the next
version, but a value that fails validation (malformed, no such AMI in the region, or
refused by local.iam because the caller may not call DescribeImages) is dropped: the
parameter keeps its last valid value, or is not created. The asynchronous event is not
emitted.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import Any

from moto.ec2.models import ec2_backends
from moto.ssm.models import SimpleSystemManagerBackend

from local import ssm_tiers

IMAGE = "aws:ec2:image"
# AMI IDs: `ami-` and 8 or 17 hexadecimal digits (Amazon EC2 User Guide, resource IDs).
_AMI_ID = re.compile(r"ami-([0-9a-f]{8}|[0-9a-f]{17})")
_refused: set[tuple[str, str, str]] = set()
_lock = threading.Lock()


def refuse(region: str, name: str, value: str) -> None:
    """The next write of `value` to `name` fails validation (the caller lacked
    ec2:DescribeImages)."""
    with _lock:
        _refused.add((region, name, value))


def is_image_parameter(backend: SimpleSystemManagerBackend, name: str, given: str | None) -> bool:
    """Whether a write to `name` is validated as an AMI ID: its data type is
    `aws:ec2:image`, or the parameter already is one (a parameter's data type stays what
    it was created with)."""
    if given == IMAGE:
        return True
    current = backend.get_parameter(name)
    return current is not None and current.data_type == IMAGE


def _valid(region: str, account: str, value: str) -> bool:
    if not _AMI_ID.fullmatch(value):
        return False
    images = ec2_backends[account][region].amis
    return value in images


@functools.cache
def install() -> None:
    original = SimpleSystemManagerBackend.put_parameter

    @functools.wraps(original)
    def put_parameter(  # noqa: PLR0917 - moto's own signature, positional
        self: SimpleSystemManagerBackend,
        name: str,
        description: str,
        value: str,
        parameter_type: str,
        allowed_pattern: str,
        keyid: str,
        overwrite: bool,
        tags: list[dict[str, str]],
        data_type: str,
        tier: str | None = None,
        policies: str | None = None,
    ) -> Any:
        # Every write first: a value its tier cannot hold is refused (local/ssm_tiers.py).
        tier = ssm_tiers.tier_for(self, name, value, tier)
        write = (name, description, value, parameter_type, allowed_pattern, keyid, overwrite, tags)
        if not is_image_parameter(self, name, data_type):
            return original(self, *write, data_type, tier=tier, policies=policies)
        with _lock:
            refused = (self.region_name, name, value) in _refused
            _refused.discard((self.region_name, name, value))
        if not refused and _valid(self.region_name, self.account_id, value):
            return original(self, *write, IMAGE, tier=tier, policies=policies)
        current = self.get_parameter(name)
        return _Answer(version=(current.version + 1) if current is not None else 1)

    SimpleSystemManagerBackend.put_parameter = put_parameter  # type: ignore[method-assign]


class _Answer:
    """What PutParameter answers for a write that validation will drop."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.tier = "Standard"
