"""What `phoenix status`, `history` and `watch` read, as plain values (what `--json`
prints; phoenix/cli/render.py draws the tables). Calls are batched: the registry by
path, the pointers ten a call, the groups and instances in one call each, the ledger's
fleet items a hundred a call; history is one Query of the ledger's history index."""

from __future__ import annotations

from typing import Any

from phoenix.cli.world import World
from phoenix.kernel import history, observed
from phoenix.kernel.attributes import plain
from phoenix.kernel.clock import parse_time
from phoenix.kernel.ledger import release_key
from phoenix.kernel.locks import DRILL_PREFIX
from phoenix.kernel.names import release_pointer
from phoenix.kernel.registry import read_parameters

# What history shows of each step: its time, name, traffic, judgment, and a decision's
# who and why.
STEP_FIELDS = ("at", "step", "traffic", "outcome", "score", "by", "reason")


def fleet_items(world: World, fleets: list[str]) -> dict[str, dict[str, Any]]:
    """The ledger's fleet items (consistent reads), by fleet; one never written is empty."""
    return observed.fleet_items(world.client("dynamodb"), world.environment.table, fleets)


def release(world: World, fleet: str, release_id: str) -> dict[str, Any]:
    """One release item as plain values (empty when the ledger has none)."""
    response = world.client("dynamodb").get_item(
        TableName=world.environment.table, Key=release_key(fleet, release_id), ConsistentRead=True
    )
    return plain(response.get("Item", {}))


def _serving(world: World, specs: dict[str, dict[str, Any]]) -> dict[tuple[str, str], Any]:
    """(fleet, slot) -> {weight, desired, amis: {ami: instances in service}}."""
    slots = observed.observe(
        world.client("autoscaling"), world.client("ec2"), world.client("elbv2"), specs
    )
    return {
        key: {"weight": slot.weight, "desired": slot.desired, "amis": slot.amis(in_service=True)}
        for key, slot in slots.items()
    }


def status(world: World) -> list[dict[str, Any]]:
    """Each fleet: strategy, pointer AMI, each slot's weight and the AMIs it serves, the
    release in flight (its last step), paused or not, a held step, the last outcome."""
    specs = world.fleets
    names = sorted(specs)
    env = world.environment.name
    # The ledger first: a release writes its pointer, then closes in the ledger, so a
    # release read here as ended has its pointer written by the time it is read below.
    items = fleet_items(world, names)
    pointers = read_parameters(world.client("ssm"), [release_pointer(env, f) for f in names])
    serving = _serving(world, specs)
    rows = []
    for name in names:
        item = items[name]
        owner = item.get("lock_owner")
        flight, drill = None, item.get("drill") if str(owner).startswith(DRILL_PREFIX) else None
        if owner and not drill:
            steps = release(world, name, str(owner)).get("steps") or []
            last = steps[-1] if steps else {}
            flight = {"release": owner, "step": last.get("step"), "at": last.get("at")}
        held = item.get("approval")
        rows.append(
            {
                "fleet": name,
                "strategy": specs[name]["strategy"],
                "pointer": pointers.get(release_pointer(env, name)),
                "slots": {
                    slot: serving.get((name, slot), {"weight": 0, "desired": 0, "amis": {}})
                    for slot in sorted(specs[name]["slots"])
                },
                "in_flight": flight,
                "paused": item.get("paused_reason") if item.get("paused") else None,
                "awaiting_approval": {k: v for k, v in held.items() if k != "token"}
                if isinstance(held, dict)
                else None,
                "last_release": item.get("last_release"),
                "last_outcome": item.get("last_outcome"),
                # a rollback drill holding the fleet, and the last one (docs/hygiene.md)
                "drill": {k: drill.get(k) for k in ("id", "ami", "kind", "started_at")}
                if isinstance(drill, dict)
                else None,
                "last_drill": {
                    "at": item["last_drill_at"],
                    "outcome": item.get("last_drill_outcome"),
                    "reason": item.get("last_drill_reason") or None,
                }
                if item.get("last_drill_at")
                else None,
            }
        )
    return rows


def history_of(world: World, fleet: str, **query: Any) -> list[dict[str, Any]]:
    """The fleet's releases newest first: id, trigger, from -> to, strategy, outcome,
    reason, times and duration, and each step (its time, traffic and judgment)."""
    page = history.releases(world.client("dynamodb"), world.environment.table, fleet, **query)
    return [_release_row(item) for item in page.releases]


def _release_row(item: dict[str, Any]) -> dict[str, Any]:
    steps = item.get("steps") or []
    from_ami = next((s.get("from_ami") for s in steps if s.get("from_ami")), None)
    started, ended = item.get("started_at"), item.get("ended_at")
    return {
        "release": item.get("release_id"),
        "trigger": item.get("trigger"),
        "from_ami": from_ami,
        "to_ami": item.get("to_ami"),
        "strategy": item.get("strategy"),
        "outcome": item.get("outcome"),
        "reason": item.get("reason") or None,
        "started_at": started,
        "ended_at": ended,
        "seconds": _seconds(started, ended),
        "steps": [{k: s[k] for k in STEP_FIELDS if k in s} for s in steps],
    }


def _seconds(started: Any, ended: Any) -> float | None:
    if not started or not ended:
        return None
    return round((parse_time(str(ended)) - parse_time(str(started))).total_seconds(), 1)
