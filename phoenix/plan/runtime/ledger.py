"""A plan run's item in the ledger (`pk = PLAN#<plan>`, `sk = RUN#<run id>`): the image,
its status (running, halted, resuming, succeeded, abandoned, failed), the wave it is at,
why it halted, the task token it waits on while halted, and each decision (who resumed
or abandoned it, and why).

An AMI that rolled back in an earlier environment of the promotion order has an item
per rollback (`pk = AMI#<ami>`, `sk = ROLLED_BACK#<environment>#<release id>`): the fleet
and the reason; a promoted image with such an AMI is refused."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from phoenix.kernel import clock
from phoenix.kernel.attributes import plain, typed
from phoenix.kernel.ledger import iso

if TYPE_CHECKING:
    from types_boto3_dynamodb.client import DynamoDBClient
    from types_boto3_dynamodb.type_defs import AttributeValueTypeDef

HALTED, RUNNING, AWAITING_APPROVAL = "halted", "running", "awaiting approval"
# The run's status once a decision took its token.
AFTER = {"resume": RUNNING, "abandon": "abandoned", "approve": RUNNING, "reject": "rejected"}


ROLLED_BACK = "ROLLED_BACK#"


def rolled_back_key(ami: str, environment: str, release_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"AMI#{ami}"}, "sk": {"S": f"{ROLLED_BACK}{environment}#{release_id}"}}


def run_key(plan: str, run_id: str) -> dict[str, AttributeValueTypeDef]:
    return {"pk": {"S": f"PLAN#{plan}"}, "sk": {"S": f"RUN#{run_id}"}}


class PlanLedger:
    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._dynamodb = dynamodb
        self._table = table

    def open_run(self, plan: str, run_id: str, facts: dict[str, Any]) -> None:
        """Create the run's item; a retried call finds it and changes nothing."""
        item = {
            **run_key(plan, run_id),
            **{name: typed(value) for name, value in facts.items()},
            "status": {"S": RUNNING},
            "started_at": {"S": iso(clock.now())},
            "decisions": {"L": []},
        }
        try:
            self._dynamodb.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise

    def update(self, plan: str, run_id: str, values: dict[str, Any]) -> None:
        """SET each of `values` on the run's item."""
        names = {f"#a{i}": name for i, name in enumerate(values)}
        self._dynamodb.update_item(
            TableName=self._table,
            Key=run_key(plan, run_id),
            UpdateExpression="SET " + ", ".join(f"#a{i} = :v{i}" for i in range(len(values))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{i}": typed(v) for i, v in enumerate(values.values())},
        )

    def halt(
        self,
        plan: str,
        run_id: str,
        *,
        token: str,
        facts: dict[str, Any],
        status: str = HALTED,
    ) -> None:
        """The run waits for a decision (halted, or awaiting approval): why, and the
        token the decision answers."""
        self.update(plan, run_id, {**facts, "status": status, "task_token": token})

    def rolled_back(
        self, ami: str, environment: str, release_id: str, facts: dict[str, Any]
    ) -> None:
        """`ami` rolled back in `environment` (a duplicate event writes the same item)."""
        item = {
            **rolled_back_key(ami, environment, release_id),
            **{name: typed(value) for name, value in facts.items()},
        }
        self._dynamodb.put_item(TableName=self._table, Item=item)

    def rollback_of(self, ami: str) -> dict[str, Any] | None:
        """One rollback of `ami` in an earlier environment, if any."""
        response = self._dynamodb.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :sk)",
            ExpressionAttributeValues={
                ":pk": rolled_back_key(ami, "", "")["pk"],
                ":sk": {"S": ROLLED_BACK},
            },
            Limit=1,
        )
        items = response.get("Items", [])
        return plain(items[0]) if items else None

    def decide(self, plan: str, run_id: str, token: str, decision: dict[str, Any]) -> bool:
        """Record `decision` (resume or abandon: who and why) on the run halted on
        `token`, and drop the token, in one conditional write; False (nothing changed)
        when the run no longer waits on that token."""
        try:
            self._dynamodb.update_item(
                TableName=self._table,
                Key=run_key(plan, run_id),
                UpdateExpression="SET #status = :next, decisions = list_append(decisions, :d) "
                "REMOVE task_token",
                ConditionExpression="task_token = :token",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={
                    ":next": {"S": AFTER[decision["decision"]]},
                    ":token": {"S": token},
                    ":d": {"L": [typed({**decision, "at": iso(clock.now())})]},
                },
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def run_item(self, plan: str, run_id: str) -> dict[str, Any]:
        response = self._dynamodb.get_item(
            TableName=self._table, Key=run_key(plan, run_id), ConsistentRead=True
        )
        return plain(response.get("Item", {}))
