"""RunInstances refuses a subnet given beside network interfaces, as EC2 does.

The EC2 API reference (RunInstances, `NetworkInterfaces`): "If you specify a network
interface, you must specify any security groups and subnets as part of the network
interface instead of using the SecurityGroupIds and SubnetId parameters." A launch
template's network interfaces count the same: its settings are the request's unless the
request overrides them (EC2 User Guide, "Store instance launch parameters in Amazon EC2
launch templates"), so a request naming `SubnetId` or `SecurityGroupIds` with a
template that has network interfaces (and none of its own) is refused with
InvalidParameterCombination. moto launches it; that is the gap this fills.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.ec2.exceptions import InvalidParameterCombination
from moto.ec2.models import ec2_backends
from moto.ec2.responses.instances import InstanceResponse

MESSAGE = (
    "Network interfaces and an instance-level subnet ID may not be specified on the same request"
)
GROUPS_MESSAGE = (
    "Network interfaces and an instance-level security groups may not be specified on the "
    "same request"
)


def install() -> None:
    original = InstanceResponse.run_instances

    @functools.wraps(original)
    def run_instances(self: InstanceResponse) -> Any:
        interfaces = self._get_param("NetworkInterfaces", []) or _template_interfaces(self)
        if interfaces and self._get_param("SubnetId"):
            raise InvalidParameterCombination(MESSAGE)
        if interfaces and self._get_param("SecurityGroupIds", []):
            raise InvalidParameterCombination(GROUPS_MESSAGE)
        return original(self)

    InstanceResponse.run_instances = run_instances  # type: ignore[method-assign]


def _template_interfaces(response: InstanceResponse) -> list[Any]:
    spec = response._get_param("LaunchTemplate", {}) or {}
    if not spec:
        return []
    ec2 = ec2_backends[response.current_account][response.region]
    template = (
        ec2.get_launch_template(spec["LaunchTemplateId"])
        if spec.get("LaunchTemplateId")
        else ec2.get_launch_template_by_name(spec["LaunchTemplateName"])
    )
    wanted = str(spec.get("Version") or "$Default")
    number = {
        "$Latest": template.latest_version_number,
        "$Default": template.default_version_number,
    }.get(wanted, wanted)
    return list(template.get_version(number).data.get("NetworkInterfaces") or [])
