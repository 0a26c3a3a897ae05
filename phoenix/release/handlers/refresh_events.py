"""Instance refresh events: the end of a refresh completes the release's waiting task.

The release stored its task token on the fleet's ledger item with the group it waits
on. A terminal event (Succeeded, Failed, Cancelled, Rollback Succeeded/Failed) for that
group reads the token, sends SendTaskSuccess with the refresh's status, then forgets
the token (a duplicate event finds the task ended or no token). Other events (Started,
Checkpoint Reached, Rollback Started), groups of no fleet here and malformed events are
logged and change nothing.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import Ledger
from phoenix.kernel.names import fleet_of_group
from phoenix.release.runtime.events import REFRESH_ENDED, InstanceRefreshEvent
from phoenix.release.runtime.settings import RefreshEventSettings

logger = Logger()


def handle(event: Any, settings: RefreshEventSettings, aws: Clients) -> dict[str, Any]:
    try:
        if not isinstance(event, dict):
            # parse() would decode a string as JSON; EventBridge delivers an object.
            raise TypeError(f"the event is a {type(event).__name__}, not an object")
        refresh = parse(event=event, model=InstanceRefreshEvent)
    except (ValidationError, TypeError) as error:
        count = error.error_count() if isinstance(error, ValidationError) else 1
        reason = f"not an instance refresh event: {count} problem(s) ({error})"[:500]
        logger.warning("event refused", extra={"reason": reason})
        return {"completed": False, "reason": reason}
    group = refresh.detail.group
    fleet = fleet_of_group(settings.environment, group)
    status = REFRESH_ENDED.get(refresh.detail_type)
    if fleet is None or status is None:
        reason = f"group {group} is no fleet's" if fleet is None else "not the end of a refresh"
        logger.info("event ignored", extra={"reason": reason, "detail_type": refresh.detail_type})
        return {"completed": False, "reason": reason}
    token = Ledger(aws.dynamodb, settings.table_name).waiting_token(fleet, group)
    if token is None:
        logger.info("no release waits on this group", extra={"group": group})
        return {"completed": False, "reason": "no release waits"}
    output = {
        "status": status,
        "reason": f"{refresh.detail_type} ({refresh.detail.instance_refresh_id})",
    }
    # The token is forgotten only after it was sent: a failed send leaves it for the
    # event's redelivery. A duplicate event finds the task already ended.
    try:
        aws.stepfunctions.send_task_success(taskToken=token, output=json.dumps(output))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code not in {"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"}:
            raise
        logger.info("the waiting task had already ended", extra={"code": code})
        Ledger(aws.dynamodb, settings.table_name).clear_waiting_token(fleet, token)
        return {"completed": False, "reason": code}
    Ledger(aws.dynamodb, settings.table_name).clear_waiting_token(fleet, token)
    logger.info("release resumed", extra={"fleet": fleet, **output})
    return {"completed": True, "reason": status}


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:  # noqa: ARG001
    settings = RefreshEventSettings.from_environ()
    return handle(event, settings, Clients(settings.region))
