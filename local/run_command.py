"""Run Command on the embedded AWS's instances: a smoke test answers as the application would.

moto records a SendCommand and answers every invocation `Success` with no output: no
instance runs a shell here. The application model (local/application.py) knows what
each instance's application would answer, from its AMI's health profile, and a smoke
test that requests the application with curl (`AWS-RunShellScript` whose commands run
`curl` against `localhost`, as phoenix's example hook sends: phoenix/hooks/runtime/
smoke_test.py) gets that answer: on an instance of a failing or erroring AMI (which
answers 5xx) the invocation is `Failed` with curl's exit code for an HTTP error, 22,
and its message on standard error ("Understanding command statuses", AWS Systems
Manager User Guide: Failed means the command ran and returned a non-zero code);
elsewhere it succeeds. Other commands keep moto's answer.

As the API reference says, and moto does not:
- SendCommand runs on the managed nodes its `InstanceIds` name, or those its `Targets`
  select ("Use either InstanceIds or Targets"); moto also adds every instance of the
  Region to a command without targets (an empty tag filter matches them all);
- SendCommand takes at most 50 instance IDs ("You can specify a maximum of 50 IDs");
  more is a ValidationException;
- ListCommandInvocations (not in moto) lists a command's invocations, a page of at most
  `MaxResults` (1 to 50, default 50) with a `NextToken` for the rest, each with its
  `Status` and, with `Details`, its `CommandPlugins` (the plugin's status, response code,
  and `Output`: what the command wrote, standard output then standard error).
"""

from __future__ import annotations

import functools
from typing import Any

from moto.core.responses import ActionResult
from moto.ssm.exceptions import ValidationException
from moto.ssm.models import Command, SimpleSystemManagerBackend
from moto.ssm.responses import SimpleSystemManagerResponse

from local.application import instance_health

ANSWERS_5XX = {"failing", "erroring"}
CURL_HTTP_ERROR = 22
MAX_INSTANCE_IDS = 50
MAX_RESULTS = 50


def _curls_the_application(command: Any) -> bool:
    lines = (command.parameters or {}).get("commands", [])
    script = " ".join(lines if isinstance(lines, list) else [str(lines)])
    return (
        command.document_name == "AWS-RunShellScript" and "curl" in script and "localhost" in script
    )


@functools.cache
def install() -> None:
    original = SimpleSystemManagerBackend.send_command

    @functools.wraps(original)
    def send_command(self: SimpleSystemManagerBackend, *args: Any, **kwargs: Any) -> Any:
        if len(kwargs.get("instance_ids") or []) > MAX_INSTANCE_IDS:
            raise ValidationException(
                f"1 validation error detected: Value at 'instanceIds' failed to satisfy "
                f"constraint: Member must have length less than or equal to {MAX_INSTANCE_IDS}"
            )
        command = original(self, *args, **kwargs)
        if not _curls_the_application(command):
            return command
        for invocation in command.invocations:
            health = instance_health(self.account_id, self.region_name, invocation["InstanceId"])
            if health in ANSWERS_5XX:
                invocation.update(
                    Status="Failed",
                    StatusDetails="Failed",
                    ResponseCode=CURL_HTTP_ERROR,
                    StandardErrorContent="curl: (22) The requested URL returned error: 500",
                )
        failed = sum(1 for i in command.invocations if i["Status"] == "Failed")
        if failed:
            command.status, command.status_details, command.error_count = "Failed", "Failed", failed
        return command

    SimpleSystemManagerBackend.send_command = send_command  # type: ignore[method-assign]
    targeted = Command._get_instance_ids_from_targets

    @functools.wraps(targeted)
    def instances_of_targets(self: Command) -> list[str]:
        return targeted(self) if self.targets else []

    Command._get_instance_ids_from_targets = instances_of_targets  # type: ignore[method-assign]
    SimpleSystemManagerResponse.list_command_invocations = _list_command_invocations  # type: ignore[attr-defined]


def _list_command_invocations(self: SimpleSystemManagerResponse) -> ActionResult:
    backend = self.ssm_backend
    command_id = self._get_param("CommandId")
    instance_id = self._get_param("InstanceId")
    size = self._get_int_param("MaxResults") or MAX_RESULTS
    if not 1 <= size <= MAX_RESULTS:
        raise ValidationException(f"MaxResults must be between 1 and {MAX_RESULTS}")
    commands = [backend.get_command_by_id(command_id)] if command_id else backend._commands
    invocations = [
        (command, invocation)
        for command in commands
        for invocation in command.invocations
        if not instance_id or invocation["InstanceId"] == instance_id
    ]
    start = int(self._get_param("NextToken") or 0)
    page = invocations[start : start + size]
    details = bool(self._get_param("Details"))
    listed = [_listed(command, i, details=details) for command, i in page]
    result: dict[str, Any] = {"CommandInvocations": listed}
    if start + size < len(invocations):
        result["NextToken"] = str(start + size)
    return ActionResult(result)


def _listed(command: Any, invocation: dict[str, Any], *, details: bool) -> dict[str, Any]:
    listed = {
        "CommandId": command.command_id,
        "InstanceId": invocation["InstanceId"],
        "DocumentName": command.document_name,
        "Comment": command.comment,
        "Status": invocation["Status"],
        "StatusDetails": invocation["StatusDetails"],
    }
    if details:
        output = str(invocation.get("StandardOutputContent", ""))
        output += str(invocation.get("StandardErrorContent", ""))
        listed["CommandPlugins"] = [
            {
                "Name": invocation.get("PluginName", "aws:runShellScript"),
                "Status": invocation["Status"],
                "StatusDetails": invocation["StatusDetails"],
                "ResponseCode": int(invocation.get("ResponseCode", 0)),
                "Output": output,
            }
        ]
    return listed
