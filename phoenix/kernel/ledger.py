"""The release ledger: one DynamoDB table of fleet items and release items.

- Fleet item (`pk = FLEET#<fleet>`, `sk = FLEET`): the lock (`lock_owner`,
  `lock_expires`), the active release, the last known good AMI, `paused`, and while a
  release waits for an instance refresh, the task token that ends the wait.
- Release item (`pk = FLEET#<fleet>`, `sk = RELEASE#<release id>`): what triggered it,
  from/to AMI, strategy, every step with its time, and the outcome.
- Rollback-target item (`pk = AMI#<ami>`, `sk = ROLLBACK_TARGET`): the fleets that may roll
  back to the AMI (`holders`), so the last one to let go removes its tag (ADR 0008).

`Ledger` holds the DynamoDB client it is given, so the logic is tested with moto and Stubber.
Times are ISO 8601 UTC strings, which compare in time order as strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypedDict, Unpack

from botocore.exceptions import ClientError

from phoenix.kernel import clock

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef

FLEET_SK = "FLEET"
# A release item's outcome from when it opens until it is closed with its real one.
IN_PROGRESS = "in progress"
# The tag that keeps an AMI from the image lifecycle's deletions (GoldenImagePipeline).
ROLLBACK_TARGET_TAG = "phoenix:rollback-target"
TARGET_SK = "ROLLBACK_TARGET"
# A holder no fleet can be (fleet names start with a letter): the AMI carried the tag
# before holders were recorded, so who else may need it is unknown; it keeps the tag.
UNTRACKED_HOLDER = "#tagged-before-holders"
# How long a release may hold its fleet's lock; the release state machine's timeout
# includes it, so a lock outlives no execution.
LOCK_HOLD = timedelta(hours=6)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def fleet_key(fleet: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"FLEET#{fleet}"}, "sk": {"S": FLEET_SK}}


def release_key(fleet: str, release_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"FLEET#{fleet}"}, "sk": {"S": f"RELEASE#{release_id}"}}


def target_key(ami: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"AMI#{ami}"}, "sk": {"S": TARGET_SK}}


def rollback_targets(item: Mapping[str, Any]) -> set[str]:
    """The AMIs a fleet item (plain values) may roll back to: the one before the last good
    AMI (what a rollback after the window releases) and the rollback window's AMI; never
    the AMI that serves (returning to it would change nothing)."""
    window = item.get("warm_slot") or {}
    named = {str(ami) for ami in (item.get("previous_good_ami"), window.get("previous_ami")) if ami}
    return named - {item.get("last_good_ami")}


class LockRefusedError(Exception):
    """The fleet is locked by another release, or paused; the message says which."""


class FleetPausedError(LockRefusedError):
    """The fleet's releases are paused (a queued release does not wait for a resume)."""


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


class ConditionalUpdate(TypedDict):
    """The expressions of a conditional UpdateItem of the fleet item."""

    UpdateExpression: str
    ConditionExpression: str
    ExpressionAttributeValues: Mapping[str, AttributeValueTypeDef]


class Ledger:
    """The ledger table, through one DynamoDB client: every read and write of a fleet's
    or a release's item."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb = dynamodb
        self.table = table

    def acquire(self, fleet: str, release_id: str, *, hold: timedelta) -> None:
        """Take the fleet's lock for `release_id` in one conditional write.

        The lock is free when nobody holds it, when its holder's time ran out (a release
        that died without unlocking), or when `release_id` already holds it (a retried
        call). A paused fleet refuses. On refusal the fleet item is read once to say why.
        """
        moment = clock.now()
        taken = self.update_fleet_if(
            fleet,
            # A new release ends the previous one's rollback window: it may reuse that
            # window's warm slot.
            UpdateExpression="SET lock_owner = :release, lock_expires = :expires, "
            "active_release = :release REMOVE warm_slot",
            ConditionExpression="(attribute_not_exists(lock_owner) OR lock_expires < :now "
            "OR lock_owner = :release) AND (attribute_not_exists(paused) OR paused = :false)",
            ExpressionAttributeValues={
                ":release": {"S": release_id},
                ":expires": {"S": iso(moment + hold)},
                ":now": {"S": iso(moment)},
                ":false": {"BOOL": False},
            },
        )
        if not taken:
            item = self.fleet_item(fleet)
            if item.get("paused"):
                raise FleetPausedError(
                    f"fleet {fleet} is paused ({item.get('paused_reason', 'no reason given')})"
                ) from None
            raise LockRefusedError(
                f"fleet {fleet} is locked by release {item.get('lock_owner')} until "
                f"{item.get('lock_expires')}"
            ) from None

    def update_fleet_if(self, fleet: str, **update: Unpack[ConditionalUpdate]) -> bool:
        """A conditional UpdateItem of the fleet item (`update`: its expressions); False,
        with nothing changed, when the condition does not hold."""
        try:
            self._dynamodb.update_item(TableName=self.table, Key=fleet_key(fleet), **update)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _remove_if(self, fleet: str, names: str, held: tuple[str, str, str]) -> bool:
        """REMOVE `names` from the fleet item if its attribute equals the value
        (`held`: attribute, placeholder, value); False (nothing changed) when it does not."""
        attribute, placeholder, value = held
        return self.update_fleet_if(
            fleet,
            UpdateExpression=f"REMOVE {names}",
            ConditionExpression=f"{attribute} = {placeholder}",
            ExpressionAttributeValues={placeholder: {"S": value}},
        )

    def release_lock(self, fleet: str, release_id: str) -> bool:
        """Free the lock if `release_id` holds it; False when it did not (nothing changes)."""
        names = "lock_owner, lock_expires, waiting_token, waiting_group"
        return self._remove_if(fleet, names, ("lock_owner", ":release", release_id))

    def fleet_item(self, fleet: str) -> dict[str, Any]:
        """The fleet item as plain values (strings, bools); empty when none exists yet."""
        response = self._dynamodb.get_item(
            TableName=self.table, Key=fleet_key(fleet), ConsistentRead=True
        )
        return plain(response.get("Item", {}))

    def open_release(self, fleet: str, release_id: str, facts: dict[str, Any]) -> None:
        """Create the release item (trigger, AMIs, strategy...) with no steps yet."""
        moment = iso(clock.now())
        item = {
            **release_key(fleet, release_id),
            **{name: typed(value) for name, value in facts.items()},
            "release_id": {"S": release_id},
            "fleet": {"S": fleet},
            "started_at": {"S": moment},
            "last_step_at": {"S": moment},
            "steps": {"L": []},
            "outcome": {"S": IN_PROGRESS},
        }
        self._dynamodb.put_item(TableName=self.table, Item=item)

    def record_step(
        self, fleet: str, release_id: str, *, step: str, detail: dict[str, Any]
    ) -> float:
        """Append a step to the release item; returns seconds since the previous step."""
        moment = clock.now()
        response = self._dynamodb.update_item(
            TableName=self.table,
            Key=release_key(fleet, release_id),
            UpdateExpression="SET steps = list_append(if_not_exists(steps, :none), :step), "
            "last_step_at = :at",
            ExpressionAttributeValues={
                ":step": {"L": [typed({"step": step, "at": iso(moment), **detail})]},
                ":none": {"L": []},
                ":at": {"S": iso(moment)},
            },
            ReturnValues="UPDATED_OLD",
        )
        previous = response.get("Attributes", {}).get("last_step_at", {}).get("S")
        if not previous:
            return 0.0
        return max(0.0, (moment - clock.parse_time(previous)).total_seconds())

    def close_release(
        self,
        fleet: str,
        release_id: str,
        *,
        outcome: str,
        reason: str,
        good_ami: str | None,
    ) -> None:
        """Record the outcome on the release item and, when it ended on a good AMI
        (`good_ami`: a rollback's), on the fleet item as its last known good AMI."""
        moment = iso(clock.now())
        self._close_item(fleet, release_id, outcome, reason, moment)
        if good_ami:
            update, values = _good_end(release_id, outcome, moment, good_ami, {})
            self._dynamodb.update_item(
                TableName=self.table,
                Key=fleet_key(fleet),
                UpdateExpression=update,
                ExpressionAttributeValues=values,
            )

    def close_success(
        self,
        fleet: str,
        release_id: str,
        *,
        good_ami: str,
        previous_ami: str | None,
        window: dict[str, Any] | None,
    ) -> bool:
        """Close `release_id` as succeeded: the fleet item says it serves `good_ami`, keeps
        the AMI before it (`previous_ami`, what a later rollback releases) and, for
        blue_green/canary, the rollback `window` (old and new slot, until when the old one
        stays warm); then the release item. Only while the release holds the fleet's lock
        and no rollback has claimed it (one conditional write, which the in-flight
        rollback's claim excludes): False, with nothing written, when a rollback took it
        first. True again for a retry whose first attempt closed it and still stands."""
        moment = iso(clock.now())
        extra = {"previous_good_ami": previous_ami, "warm_slot": window}
        update, values = _good_end(release_id, "succeeded", moment, good_ami, extra)
        values[":rolled"] = {"S": release_id}
        closed = self.update_fleet_if(
            fleet,
            UpdateExpression=update,
            ConditionExpression="lock_owner = :release AND "
            "(attribute_not_exists(rolled_back) OR rolled_back <> :rolled)",
            ExpressionAttributeValues=values,
        )
        if not closed:
            item = self.fleet_item(fleet)
            if item.get("last_release") != release_id or item.get("last_outcome") != "succeeded":
                return False
        self._close_item(fleet, release_id, "succeeded", "", moment, if_open=True)
        return True

    def _close_item(
        self,
        fleet: str,
        release_id: str,
        outcome: str,
        reason: str,
        moment: str,
        *,
        if_open: bool = False,
    ) -> None:
        """The release item's outcome; with `if_open`, only while it has none (a rollback
        that closed it meanwhile has the last word)."""
        key = release_key(fleet, release_id)
        update = "SET outcome = :outcome, reason = :reason, ended_at = :at"
        values: dict[str, AttributeValueTypeDef] = {
            ":outcome": {"S": outcome},
            ":reason": {"S": reason},
            ":at": {"S": moment},
        }
        if not if_open:
            self._dynamodb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=update,
                ExpressionAttributeValues=values,
            )
            return
        try:
            self._dynamodb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression=update,
                ConditionExpression="outcome = :open",
                ExpressionAttributeValues={**values, ":open": {"S": IN_PROGRESS}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def close_window(self, fleet: str, release_id: str) -> bool:
        """End `release_id`'s rollback window before its old slot goes; False when it had
        already ended (a rollback took it, or a later release came): the window rollback
        claims the same item under the opposite condition. True too when this release
        ended it already (a retry of the retire step) and its success still stands."""
        closed = self.update_fleet_if(
            fleet,
            UpdateExpression="REMOVE warm_slot",
            ConditionExpression="last_release = :release AND last_outcome = :succeeded "
            "AND attribute_exists(warm_slot)",
            ExpressionAttributeValues={
                ":release": {"S": release_id},
                ":succeeded": {"S": "succeeded"},
            },
        )
        item = {} if closed else self.fleet_item(fleet)
        ours = item.get("last_release") == release_id and "warm_slot" not in item
        return closed or (ours and item.get("last_outcome") == "succeeded")

    def record_flight(self, fleet: str, release_id: str, flight: dict[str, Any]) -> None:
        """What the alarm-driven rollback needs of the release in flight (slots, AMIs), on
        the fleet item, while `release_id` holds the lock."""
        self._set_while_locked(
            fleet, release_id, {"flight": typed({"release": release_id, **flight})}
        )

    def mark_warm(self, fleet: str, release_id: str) -> None:
        """The release's new slot passed its warm-up: from now on the rollback function
        acts on that slot's alarms too (before, the release's own warm-up gate judges
        it: unhealthy targets of a slot that serves nothing are expected while it warms)."""
        self._dynamodb.update_item(
            TableName=self.table,
            Key=fleet_key(fleet),
            UpdateExpression="SET flight.warm_at = :at",
            ConditionExpression="lock_owner = :release AND flight.#release = :release",
            ExpressionAttributeNames={"#release": "release"},
            ExpressionAttributeValues={
                ":at": {"S": iso(clock.now())},
                ":release": {"S": release_id},
            },
        )

    def await_refresh(self, fleet: str, release_id: str, *, token: str, group: str) -> None:
        """Store the task token the instance refresh receiver completes for `group`."""
        self._set_while_locked(
            fleet, release_id, {"waiting_token": {"S": token}, "waiting_group": {"S": group}}
        )

    def _set_while_locked(
        self, fleet: str, release_id: str, values: dict[str, AttributeValueTypeDef]
    ) -> None:
        """SET the fleet item's attributes (name -> typed value) while `release_id` holds
        the lock (a ConditionalCheckFailedException otherwise: the release lost it)."""
        self._dynamodb.update_item(
            TableName=self.table,
            Key=fleet_key(fleet),
            UpdateExpression="SET " + ", ".join(f"{name} = :{name}" for name in values),
            ConditionExpression="lock_owner = :release",
            ExpressionAttributeValues={
                **{f":{name}": value for name, value in values.items()},
                ":release": {"S": release_id},
            },
        )

    def waiting_token(self, fleet: str, group: str) -> str | None:
        """The token a release waits with on `group` (None: nobody waits on it)."""
        item = self.fleet_item(fleet)
        token = item.get("waiting_token")
        return str(token) if token and item.get("waiting_group") == group else None

    def clear_waiting_token(self, fleet: str, token: str) -> None:
        """Forget `token` once it has been sent (unless a newer wait replaced it)."""
        self._remove_if(fleet, "waiting_token, waiting_group", ("waiting_token", ":token", token))

    def set_paused(self, fleet: str, *, paused: bool, why: str) -> None:
        """Pause the fleet's releases (the lock refuses them) with the reason, or resume."""
        if paused:
            self._dynamodb.update_item(
                TableName=self.table,
                Key=fleet_key(fleet),
                UpdateExpression="SET paused = :true, paused_reason = :why",
                ExpressionAttributeValues={":true": {"BOOL": True}, ":why": {"S": why}},
            )
        else:
            self._dynamodb.update_item(
                TableName=self.table,
                Key=fleet_key(fleet),
                UpdateExpression="REMOVE paused, paused_reason",
            )

    def hold_target(self, ami: str, fleet: str) -> set[str]:
        """Record that `fleet` may roll back to `ami`; who held it before (idempotent)."""
        return self._holders("ADD", ami, fleet, "UPDATED_OLD")

    def drop_target(self, ami: str, fleet: str) -> set[str]:
        """Record that `fleet` no longer may; who still holds `ami` (empty: untag it)."""
        return self._holders("DELETE", ami, fleet, "UPDATED_NEW")

    def _holders(
        self, verb: str, ami: str, fleet: str, returns: Literal["UPDATED_OLD", "UPDATED_NEW"]
    ) -> set[str]:
        response = self._dynamodb.update_item(
            TableName=self.table,
            Key=target_key(ami),
            UpdateExpression=f"SET updated_at = :at {verb} holders :fleet",
            ExpressionAttributeValues={":fleet": {"SS": [fleet]}, ":at": {"S": iso(clock.now())}},
            ReturnValues=returns,
        )
        return set(response.get("Attributes", {}).get("holders", {}).get("SS", []))

    def target_holders(self, ami: str) -> set[str]:
        """The fleets that may roll back to `ami` now (a consistent read)."""
        response = self._dynamodb.get_item(
            TableName=self.table, Key=target_key(ami), ConsistentRead=True
        )
        return set(response.get("Item", {}).get("holders", {}).get("SS", []))

    def record_targets(self, fleet: str, amis: set[str]) -> None:
        """The AMIs `fleet` now holds (hold_target): what its next reconciliation lets go
        of when the fleet item no longer names them, even after a release took the window."""
        self._dynamodb.update_item(
            TableName=self.table,
            Key=fleet_key(fleet),
            UpdateExpression="SET rollback_targets = :amis",
            ExpressionAttributeValues={":amis": typed(sorted(amis))},
        )


def _good_end(
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
