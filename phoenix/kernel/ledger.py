"""The release ledger: one DynamoDB table of fleet items and release items.

- Fleet item (`pk = FLEET#<fleet>`, `sk = FLEET`): the lock (`lock_owner`,
  `lock_expires`), the active release, the last known good AMI, `paused`, and while a
  release waits for an instance refresh or a person (`approval`: approval.py), its token.
- Release item (`pk = FLEET#<fleet>`, `sk = RELEASE#<release id>`): what triggered it,
  from/to AMI, strategy, every step with its time, and the outcome.
- Rollback-target item (`pk = AMI#<ami>`, `sk = ROLLBACK_TARGET`): the fleets that may roll
  back to the AMI (`holders`), so the last one to let go removes its tag (ADR 0008).

`Ledger` holds the DynamoDB client it is given (tested with moto and Stubber). Times are
ISO 8601 UTC strings, which compare in time order as strings. Attribute values: attributes.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Required, TypedDict, Unpack

from botocore.exceptions import ClientError

from phoenix.kernel import clock
from phoenix.kernel.attributes import good_end, plain, typed
from phoenix.kernel.locks import FleetPausedError, LockRefusedError, lock_condition, refusal

__all__ = ["FleetPausedError", "Ledger", "LockRefusedError"]

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef, UpdateItemInputTypeDef

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
    """The AMIs a fleet item (plain values) keeps in use: the last good (serving), the one
    before it (a rollback after the window releases it) and the window's (ADR 0016)."""
    window = item.get("warm_slot") or {}
    amis = (item.get("last_good_ami"), item.get("previous_good_ami"), window.get("previous_ami"))
    return {str(ami) for ami in amis if ami}


class ConditionalUpdate(TypedDict, total=False):
    """The expressions of a conditional UpdateItem of the fleet item."""

    UpdateExpression: Required[str]
    ConditionExpression: Required[str]
    ExpressionAttributeValues: Required[Mapping[str, AttributeValueTypeDef]]
    ExpressionAttributeNames: Mapping[str, str]


class Ledger:
    """The ledger table, through one DynamoDB client: every read and write of a fleet's
    or a release's item."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb = dynamodb
        self.table = table

    def acquire(
        self, fleet: str, release_id: str, *, hold: timedelta, over_drill: bool = False,
        again: bool = True,
    ) -> None:  # fmt: skip
        """Take the fleet's lock for `release_id` in one conditional write (when: locks.py); a
        paused fleet refuses. On refusal the fleet item is read once to say why; a holder that
        let go between the write and the read is followed by one more try."""
        moment = clock.now()
        condition, extra = lock_condition(over_drill=over_drill)
        taken = self.update_fleet_if(
            fleet,
            # A new release ends the previous one's rollback window: it may reuse that
            # window's warm slot.
            UpdateExpression="SET lock_owner = :release, lock_expires = :expires, "
            "active_release = :release REMOVE warm_slot",
            ConditionExpression=condition,
            ExpressionAttributeValues={
                ":release": {"S": release_id},
                ":expires": {"S": iso(moment + hold)},
                ":now": {"S": iso(moment)},
                ":false": {"BOOL": False},
                **extra,
            },
        )
        if not taken:
            item = self.fleet_item(fleet)
            if item.get("paused"):
                raise FleetPausedError(
                    f"fleet {fleet} is paused ({item.get('paused_reason', 'no reason given')})"
                ) from None
            if again and not item.get("lock_owner"):
                return self.acquire(
                    fleet, release_id, hold=hold, over_drill=over_drill, again=False
                )
            owner, expires = str(item.get("lock_owner")), str(item.get("lock_expires"))
            raise refusal(fleet, owner, expires) from None
        return None

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
        names = "lock_owner, lock_expires, waiting_token, waiting_group, approval"
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
        self, fleet: str, release_id: str, *, outcome: str, reason: str, good_ami: str | None
    ) -> None:
        """Record the outcome on the release item and, when it ended on a good AMI
        (`good_ami`: a rollback's), on the fleet item as its last known good AMI."""
        moment = iso(clock.now())
        self._close_item(fleet, release_id, outcome, reason, moment)
        if good_ami:
            update, values = good_end(release_id, outcome, moment, good_ami, {})
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
        """Close `release_id` as succeeded (fleet item, then release item), keeping what a
        later rollback needs, while it holds the lock and no rollback claimed it; False,
        nothing written, when one did; True again for a retry of a close that stands."""
        moment = iso(clock.now())
        extra = {"previous_good_ami": previous_ami, "warm_slot": window}
        update, values = good_end(release_id, "succeeded", moment, good_ami, extra)
        closed = self.update_fleet_if(
            fleet,
            UpdateExpression=update,
            ConditionExpression="lock_owner = :release AND "
            "(attribute_not_exists(rolled_back) OR rolled_back <> :release)",
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
        """The release item's outcome; `if_open`: unless a rollback closed it meanwhile."""
        values: dict[str, AttributeValueTypeDef] = {
            ":outcome": {"S": outcome},
            ":reason": {"S": reason},
            ":at": {"S": moment},
        }
        params: UpdateItemInputTypeDef = {
            "TableName": self.table,
            "Key": release_key(fleet, release_id),
            "UpdateExpression": "SET outcome = :outcome, reason = :reason, ended_at = :at",
            "ExpressionAttributeValues": values,
        }
        if if_open:
            params["ConditionExpression"] = "outcome = :open"
            values[":open"] = {"S": IN_PROGRESS}
        try:
            self._dynamodb.update_item(**params)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if not if_open or code != "ConditionalCheckFailedException":
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
        self.set_while_locked(
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
        self.set_while_locked(
            fleet, release_id, {"waiting_token": {"S": token}, "waiting_group": {"S": group}}
        )

    def set_while_locked(
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
