"""A promoted plan run's own steps (docs/adr/0012-promotion.md).

- `approval`: a promoted image waits for a person's approval, asked by a `Promotion
  Approval Requested` event (a rule mails it to the environment's topic); the run waits
  on its token for `Promotion Approved` or `Promotion Rejected`.
- `promotable`: just before the first wave, after the bake and approval, an image whose
  AMI rolled back in an earlier environment is refused (`start` refused it already if
  the rollback was known then); from another account, this account's Auto Scaling role
  is granted the use of the key that encrypts the AMIs' snapshots.
"""

from __future__ import annotations

from typing import Any

from phoenix.kernel import clock
from phoenix.kernel.clients import Clients
from phoenix.kernel.ledger import iso
from phoenix.plan.runtime.ledger import AWAITING_APPROVAL
from phoenix.plan.runtime.models import PlanState, PlanStep
from phoenix.plan.runtime.run import PlanRefusedError, announce, plan_ledger, refuse_rolled_back
from phoenix.plan.runtime.settings import PlanSettings


def approval(aws: Clients, settings: PlanSettings, step: PlanStep) -> dict[str, Any]:
    """Ask for the promoted image's approval; the run waits on the task token until a
    `Promotion Approved` or `Promotion Rejected` answers it."""
    state = step.state
    if not step.task_token:
        raise PlanRefusedError("approval needs the task token of its wait")
    facts = {"promoted_from": state.promoted_from, "asked_at": iso(clock.now())}
    plan_ledger(aws, settings).halt(
        state.plan, state.run.id, token=step.task_token, facts=facts, status=AWAITING_APPROVAL
    )
    ask = {"image": state.image, "amis": state.amis, "promoted_from": state.promoted_from}
    # The environment's notification rule sends it to the topic as a short text.
    announce(aws, "Promotion Approval Requested", state, **ask)
    return facts


def promotable(aws: Clients, settings: PlanSettings, step: PlanStep) -> dict[str, Any]:
    """Refuse a promoted image whose AMI rolled back in an earlier environment; when the
    image comes from another account, let this account's Auto Scaling launch it."""
    state = step.state
    refuse_rolled_back(plan_ledger(aws, settings), state)
    grants = _grant_autoscaling(aws, settings, state) if settings.autoscaling_role_arn else {}
    return {"promotable": True, "grants": grants}


# What Auto Scaling's service-linked role needs of the key that encrypts an AMI's
# snapshots to launch instances from it (EC2 Auto Scaling user guide, "Required AWS KMS
# key policy for use with encrypted volumes": the grant an external account creates).
AUTOSCALING_GRANT_OPERATIONS: list[Any] = [
    "Encrypt",
    "Decrypt",
    "ReEncryptFrom",
    "ReEncryptTo",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "DescribeKey",
    "CreateGrant",
]


def _grant_autoscaling(aws: Clients, settings: PlanSettings, state: PlanState) -> dict[str, str]:
    """A shared AMI's snapshots are encrypted with the earlier account's key: this
    account's Auto Scaling role may use it only through a grant that this account
    creates (the key policy there allows it). One named grant per key: CreateGrant
    with the same name and parameters returns the grant that exists (KMS API
    reference, CreateGrant, Name), so a retried or later run creates no other."""
    regions = sorted({wave.region for wave in state.waves.all} if state.waves else state.amis)
    grants: dict[str, str] = {}
    for region in regions:
        key = state.keys.get(region)
        if key is None:
            raise PlanRefusedError(
                f"{state.promoted_from} named no key for {region}: its AMIs cannot be launched here"
            )
        grant = aws.in_region(region).kms.create_grant(
            KeyId=key,
            GranteePrincipal=settings.autoscaling_role_arn,
            Operations=AUTOSCALING_GRANT_OPERATIONS,
            Name=f"phoenix-{state.environment}-autoscaling",
        )
        grants[region] = grant["GrantId"]
    return grants
