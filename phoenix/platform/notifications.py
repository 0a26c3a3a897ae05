"""What the environment's topic tells people, in a line of text each (EventBridge input
transformers), never an event's raw JSON: a release that succeeded, rolled back or
failed, a canary step awaiting a decision, a halted plan, a fleet drifted from what its
releases left (docs/hygiene.md), and a fleet's alarm going to ALARM (its rollback
follows). Each line names the fleet, the environment, the AMIs, the reason, and the
`phoenix` command to look further (docs/operations.md)."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_sns as sns
from constructs import Construct

from phoenix.platform.patterns import fleet_alarms_raised, phoenix_events
from phoenix.platform.undelivered import topic_target

field = events.EventField.from_path


def _messages(env: str) -> dict[str, str]:
    """Detail type -> the text sent for it."""
    fleet, release = field("$.detail.fleet"), field("$.detail.release_id")
    reason = field("$.detail.reason")
    history = f"phoenix history {fleet} --env {env}"
    look = f"Look: {history}"
    return {
        "Release Succeeded": f"phoenix {env}: {fleet} now serves {field('$.detail.to_ami')} "
        f"(was {field('$.detail.from_ami')}), release {release}. {look}",
        "Release Rolled Back": f"phoenix {env}: {fleet} rolled back release {release}: "
        f"{field('$.detail.rolled_back_ami')} no longer serves. Why: {reason}. {look}",
        "Release Failed": f"phoenix {env}: release {release} of {fleet} "
        f"({field('$.detail.to_ami')}) failed and could not be rolled back; the fleet is left "
        f"as it is. Why: {reason}. Look: phoenix status --env {env}; look: {history}",
        "Canary Approval Requested": f"phoenix {env}: release {release} of {fleet} holds "
        f"its canary at {field('$.detail.traffic')}% for your decision: "
        f"{field('$.detail.judgment')}. Without one in {field('$.detail.timeout_minutes')} "
        f"min it rolls back. Decide: phoenix approve {fleet} --env {env} --reason ... or "
        f"phoenix reject {fleet} --env {env} --reason ...",
        "Plan Halted": f"phoenix {env}: plan {field('$.detail.plan')} run "
        f"{field('$.detail.run')} halted at wave {field('$.detail.wave')}: {reason}. Resume "
        "or abandon it with a phoenix event (Plan Resume Requested, Plan Abandon "
        f"Requested). Look: phoenix status --env {env}",
        "Fleet Drift Detected": f"phoenix {env}: {fleet} drifted from what its releases "
        f"left: {field('$.detail.finding_count')} findings ({field('$.detail.action')}). "
        f"Look: phoenix status --env {env}; docs/hygiene.md",
    }


class Notifications(Construct):
    """One rule per kind of message, each sending its text to `topic`."""

    def __init__(self, scope: Construct, id: str, *, environment: str, topic: sns.ITopic) -> None:
        super().__init__(scope, id)
        for detail_type, text in _messages(environment).items():
            events.Rule(
                self,
                detail_type.replace(" ", ""),
                description=f"phoenix {environment}: {detail_type}, to the topic as text",
                event_pattern=phoenix_events([detail_type], [environment]),
                targets=[topic_target(self, topic, events.RuleTargetInput.from_text(text))],
            )
        alarm = field("$.detail.alarmName")
        events.Rule(
            self,
            "AlarmRaised",
            description=f"phoenix {environment}: a fleet's alarm in ALARM, to the topic as text",
            event_pattern=fleet_alarms_raised(environment),
            targets=[
                topic_target(
                    self,
                    topic,
                    events.RuleTargetInput.from_text(
                        f"phoenix {environment}: alarm {alarm} is in ALARM: "
                        f"{field('$.detail.state.reason')}. Its fleet rolls back what it "
                        f"can; look: phoenix status --env {environment}"
                    ),
                )
            ],
        )
