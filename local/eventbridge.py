"""EventBridge in the embedded AWS: rules deliver to Lambda, Step Functions, SQS, SNS and
event buses.

moto matches events to rules correctly but raises NotImplementedError for Lambda and
Step Functions targets, and fills InputTransformer templates without JSON-quoting
string values. Here a matching rule's Lambda and Step Functions targets receive what
the EventBridge user guide says they receive:
- `Input`: that constant JSON text;
- `InputPath`: the part of the event the JSONPath selects;
- `InputTransformer`: the template with each `<placeholder>` replaced by the value its
  path selects: as JSON where the placeholder stands alone, as raw text inside a quoted
  string; a path that matches nothing gives null (or nothing, inside a string);
- none of these: the whole event.
Lambda and Step Functions targets are delivered asynchronously, as AWS does, by one
delivery thread in the order the events were put: a handler whose call puts an event
(StartInstanceRefresh announcing the refresh) returns before the event's target runs.
`drain()` waits until every event put so far is delivered; the simulated clock drains
between minutes, and tests drain before they look. SQS targets are delivered before
PutEvents returns. A delivery that fails is logged and never fails the call that
produced the event: it is retried by the target's retry policy, then put in its
dead-letter queue or dropped (local/eventbridge_retries.py).

An event bus target (in this or another Region or account) receives the event itself,
asynchronously like a Lambda target, as the EventBridge user guide describes bus-to-bus
delivery ("Sending and receiving events between AWS Regions"; "Event bus target: bus
to bus"; "Sending and receiving events between event buses in the same account and
Region"):
- the event arrives as a new event, with a new `id` (and ingestion time); everything
  else is the event as the sender's bus received it: `source`, `detail-type`,
  `detail`, `resources`, `time`, and `account` and `region` (the event structure
  reference: the Region "where the event originated"). moto re-puts only Source,
  DetailType and Detail, so the receiving rules would lose `resources` (an Image
  Builder event's image ARN) and `time`;
- the rule delivers with the target's role ("Delivery role": events:PutEvents on the
  destination bus): a target without a role, or whose role may not put events on that
  bus (local.iam_policy's evaluator on the role's policies as deployed), is not
  delivered, as AWS counts a failed invocation (a permissions error: not retried, to
  the dead-letter queue);
- an event that arrived from another bus goes no further to a bus ("EventBridge can't
  route events received from a sender event bus to a third event bus").
An SNS topic target gets the event (or its transformed input, a text for people) as the
message, published by EventBridge itself: only when the topic's policy lets the service
principal `events.amazonaws.com` publish to it (EventBridge user guide, "Amazon SNS
permissions"); otherwise the delivery fails (a permissions error: not retried, to the
dead-letter queue), as on AWS. Like SQS targets, SNS targets are delivered before
PutEvents returns.
Input transformation of a bus target (Input, InputPath, InputTransformer) is not
emulated: such a target is not delivered, and the log says why. Other target types keep
moto's behaviour.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import queue
import re
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import ClientError
from moto.core.utils import unix_time
from moto.events.models import Rule, events_backends
from moto.events.utils import EventMessageType
from moto.utilities.arns import parse_arn

from local import eventbridge_retries
from local.cloudformation import aws_client
from local.eventbridge_retries import Delivery
from local.iam import role_policies
from local.iam_policy import Decision, Request, evaluate, statements_of

logger = logging.getLogger("phoenix.local.eventbridge")
# moto delivers to SQS too, but drops `account` (and anything else its default template
# omits) from the event; EventBridge delivers the whole event.
DELIVERED = {"lambda", "states", "sqs", "sns"}
_PATH_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.-]+)>")


def select(event: Any, path: str) -> Any:
    """A JSONPath of the form EventBridge uses: `$`, `$.a.b`, `$.a[0]`; None if absent."""
    if path == "$":
        return event
    if not path.startswith("$"):
        raise ValueError(f"not a JSONPath: {path!r}")
    value = event
    for name, index in _PATH_STEP.findall(path[1:]):
        try:
            value = value[int(index)] if index else value[name]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def transform(template: str, paths: dict[str, str], event: Any) -> str:
    """Fill an InputTransformer template, quoting as EventBridge does."""
    values = {name: select(event, path) for name, path in paths.items()}
    out: list[str] = []
    in_string = False
    position = 0
    while position < len(template):
        char = template[position]
        match = _PLACEHOLDER.match(template, position) if char == "<" else None
        if match and match.group(1) in values:
            value = values[match.group(1)]
            if in_string:
                text = (
                    value
                    if isinstance(value, str)
                    else ("" if value is None else json.dumps(value))
                )
                out.append(json.dumps(text)[1:-1])
            else:
                out.append(json.dumps(value))
            position = match.end()
            continue
        if char == '"' and (position == 0 or template[position - 1] != "\\"):
            in_string = not in_string
        out.append(char)
        position += 1
    return "".join(out)


def target_input(target: dict[str, Any], event: dict[str, Any]) -> str:
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        return json.dumps(select(event, target["InputPath"]))
    transformer = target.get("InputTransformer")
    if transformer:
        return transform(transformer["InputTemplate"], transformer.get("InputPathsMap", {}), event)
    return json.dumps(event)


def is_event_bus(target_arn: str) -> bool:
    arn = parse_arn(target_arn)
    return bool(arn.service == "events" and arn.resource_type == "event-bus")


class BusNotDeliveredError(Exception):
    """A bus target EventBridge would not deliver to (the reason is the message)."""


# The ids of events that reached a bus from another bus: they go to no further bus.
_from_a_bus: set[str] = set()


def to_bus(target: dict[str, Any], event: dict[str, Any]) -> None:
    """Deliver `event` to the event bus `target` names, as EventBridge does (see above)."""
    if event.get("id") in _from_a_bus:
        raise BusNotDeliveredError("it came from another event bus")
    transformed = sorted({"Input", "InputPath", "InputTransformer"} & set(target))
    if transformed:
        raise BusNotDeliveredError(f"input transformation of a bus target: {transformed}")
    role = target.get("RoleArn")
    if not role:
        raise BusNotDeliveredError("the target has no role")
    allowed = evaluate(role_policies(role), Request("events:PutEvents", target["Arn"]))
    if allowed is not Decision.ALLOWED:
        raise BusNotDeliveredError(f"{role} may not put events on {target['Arn']}")
    arn = parse_arn(target["Arn"])
    bus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
    arrived = {**copy.deepcopy(event), "id": str(uuid.uuid4())}
    if "ingestion-time" in arrived:  # moto's own field: when the receiving bus took it
        arrived["ingestion-time"] = unix_time()
    _from_a_bus.add(arrived["id"])
    for rule in list(bus.rules.values()):
        rule.send_to_targets(copy.deepcopy(arrived))  # type: ignore[arg-type]


def deliver(target: dict[str, Any], event: dict[str, Any], region: str) -> None:
    if is_event_bus(target["Arn"]):
        to_bus(target, event)
        return
    arn = parse_arn(target["Arn"])
    payload = target_input(target, event)
    if arn.service == "lambda":
        aws_client("lambda", region, once=True).invoke(
            FunctionName=target["Arn"], InvocationType="Event", Payload=payload.encode()
        )
    elif arn.service == "states":
        # EventBridge names the execution itself; moto would name every one "None".
        aws_client("stepfunctions", region, once=True).start_execution(
            stateMachineArn=target["Arn"], name=str(uuid.uuid4()), input=payload
        )
    elif arn.service == "sns":
        sns = aws_client("sns", arn.region)
        policy = sns.get_topic_attributes(TopicArn=target["Arn"])["Attributes"].get("Policy")
        if not _events_may_publish(policy or "{}", target["Arn"]):
            raise BusNotDeliveredError(
                f"the policy of {target['Arn']} does not let events.amazonaws.com publish"
            )
        sns.publish(TopicArn=target["Arn"], Message=payload)
    elif arn.service == "sqs":
        sqs = aws_client("sqs", arn.region)
        url = sqs.get_queue_url(QueueName=arn.resource_id, QueueOwnerAWSAccountId=arn.account)
        message: dict[str, Any] = {"QueueUrl": url["QueueUrl"], "MessageBody": payload}
        group = target.get("SqsParameters", {}).get("MessageGroupId")
        if group:
            message |= {"MessageGroupId": group, "MessageDeduplicationId": event["id"]}
        sqs.send_message(**message)


def _events_may_publish(policy: str, topic: str) -> bool:
    """Whether a topic policy lets EventBridge's service principal publish to `topic`."""
    statements = [
        statement
        for statement in statements_of(policy)
        if "events.amazonaws.com" in _listed(statement.get("Principal", {}), "Service")
    ]
    return evaluate([{"Statement": statements}], Request("sns:Publish", topic)) == Decision.ALLOWED


def _listed(principal: Any, kind: str) -> list[str]:
    value = principal.get(kind, []) if isinstance(principal, dict) else []
    return [value] if isinstance(value, str) else list(value)


# Deliveries waiting for a delivery thread.
_pending: queue.Queue[Delivery] = queue.Queue()
_taps: dict[str, Callable[[dict[str, Any]], None]] = {}


def tap(rule_name: str, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
    """Call `listener` with every event rule `rule_name` matches, when it matches (the
    rehearsal's timeline); returns what stops it."""
    _taps[rule_name] = listener

    def stop() -> None:
        _taps.pop(rule_name, None)

    return stop


def _deliver_logged(delivery: Delivery) -> None:
    """Deliver; a failed delivery never fails the producer's call: EventBridge retries it,
    then puts it in the target's dead-letter queue or drops it (eventbridge_retries)."""
    target, event = delivery.target, delivery.event
    try:
        deliver(target, event, delivery.region)
    except BusNotDeliveredError as refused:
        logger.warning("event %s not delivered to %s: %s", event.get("id"), target["Arn"], refused)
        eventbridge_retries.failed(delivery, "NOT_DELIVERED", str(refused), _enqueue_one)
    except ClientError as error:
        logger.warning("event %s not delivered to %s: %s", event.get("id"), target["Arn"], error)
        code = str(error.response.get("Error", {}).get("Code", "ClientError"))
        eventbridge_retries.failed(delivery, code, str(error), _enqueue_one)
    except Exception:
        logger.exception("event %s not delivered to %s", event.get("id"), target["Arn"])


def _delivery_loop(stop: threading.Event | None = None) -> None:
    """Deliver what is pending; an extra worker of `concurrently` ends once `stop` is set
    (it looks every 50 ms while nothing is pending)."""
    while stop is None or not stop.is_set():
        try:
            delivery = _pending.get(timeout=None if stop is None else 0.05)
        except queue.Empty:
            continue
        try:
            _deliver_logged(delivery)
        finally:
            _pending.task_done()


# What `at_least_once` holds back to deliver late, in the opposite order, at the next drain.
_held: list[Delivery] = []
_mode = {"twice": False, "late": False}
_held_lock = threading.Lock()


def drain() -> None:
    """Return once every event put so far has been delivered to its targets (what
    `at_least_once` held back, now, last first)."""
    with _held_lock:
        late, _held[:] = list(reversed(_held)), []
    for delivery in late:
        _pending.put(delivery)
    _pending.join()


def _enqueue_one(delivery: Delivery) -> None:
    _pending.put(delivery)


def _enqueue(delivery: Delivery) -> None:
    copies = 2 if _mode["twice"] else 1
    for _ in range(copies):
        if _mode["late"]:
            with _held_lock:
                _held.append(delivery)
        else:
            _pending.put(delivery)


@contextmanager
def at_least_once(*, twice: bool = False, late: bool = False) -> Iterator[None]:
    """Deliver as EventBridge may (the user guide: it delivers each event "at least
    once", and an event can arrive late and out of order; "Retry policy"): with `twice`,
    every Lambda and Step Functions delivery happens twice, the same event; with `late`,
    deliveries wait until the next drain (the clock drains between simulated minutes)
    and then arrive last first."""
    drain()
    _mode.update(twice=twice, late=late)
    try:
        yield
    finally:
        _mode.update(twice=False, late=False)
        drain()


@contextmanager
def concurrently(workers: int = 8) -> Iterator[None]:
    """Deliver with `workers` threads at once (a rule's targets are invoked as events
    come, and Lambda runs concurrent invocations in environments of their own,
    local/lambda_dispatch.py): events put together are handled concurrently. Outside
    this block one thread delivers, in the order the events were put."""
    _delivery_thread()
    stop = threading.Event()
    extra = [
        threading.Thread(
            target=_delivery_loop, args=(stop,), daemon=True, name=f"eventbridge-delivery-{n}"
        )
        for n in range(1, workers)
    ]
    for thread in extra:
        thread.start()
    try:
        yield
    finally:
        drain()
        stop.set()
        for thread in extra:
            thread.join()


@functools.cache
def _delivery_thread() -> threading.Thread:
    thread = threading.Thread(target=_delivery_loop, daemon=True, name="eventbridge-delivery")
    thread.start()
    return thread


@functools.cache
def install() -> None:
    """Deliver to Lambda, Step Functions, SQS and event bus targets (once per process)."""
    Rule.send_to_targets = _delivering(Rule.send_to_targets)  # type: ignore[method-assign]


def _delivering(send: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(send)
    def sent(self: Rule, original_event: EventMessageType, transform_input: bool = True) -> None:
        if not self.event_pattern.matches_event(original_event):
            return
        listener = _taps.get(self.name)
        if listener is not None:
            listener(dict(original_event))
        ours = [
            t
            for t in self.targets
            if parse_arn(t["Arn"]).service in DELIVERED or is_event_bus(t["Arn"])
        ]
        others = [t for t in self.targets if t not in ours]
        for target in ours:
            delivery = Delivery(target, dict(original_event), self.region_name, self.arn)
            if parse_arn(target["Arn"]).service in {"sqs", "sns"}:
                _deliver_logged(delivery)
            else:
                _delivery_thread()
                _enqueue(delivery)
        if others:
            kept = self.targets
            self.targets = others
            try:
                send(self, original_event, transform_input)
            finally:
                self.targets = kept

    return sent
