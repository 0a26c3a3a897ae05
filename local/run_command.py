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
"""

from __future__ import annotations

import functools
from typing import Any

from moto.ssm.models import SimpleSystemManagerBackend

from local.application import instance_health

ANSWERS_5XX = {"failing", "erroring"}
CURL_HTTP_ERROR = 22


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
