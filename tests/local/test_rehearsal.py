"""The rehearsal's reckoning: the critical path it reports, and failing on a failed check
(the scenarios themselves run in tests/integration and in `make demo`)."""

from __future__ import annotations

import io

from rich.console import Console

from local.api_calls import CallLog
from local.rehearsal import Rehearsal, critical_path
from local.rehearsal.run import report


def test_the_critical_path_ends_at_the_call_that_restores_traffic() -> None:
    calls = CallLog()
    calls.sequence += [
        (1.0, "phoenix-sandbox-ReleaseGate-X", "elasticloadbalancing:DescribeTargetHealth"),
        (2.0, "phoenix-sandbox-ReleaseRollbackFunction-Y", "dynamodb:GetItem"),
        (3.0, "phoenix-sandbox-ReleaseRollbackFunction-Y", "elasticloadbalancing:ModifyListener"),
        (4.0, "phoenix-sandbox-ReleaseRollbackFunction-Y", "dynamodb:UpdateItem"),
    ]
    path, restored = critical_path(calls, "ReleaseRollback")
    assert path == ["dynamodb:GetItem", "elasticloadbalancing:ModifyListener"]
    assert restored == 3.0


def test_a_failed_check_fails_the_rehearsal() -> None:
    rehearsal = Rehearsal(aws=None)  # type: ignore[arg-type]  # report reads no AWS
    rehearsal.scenario("one").check("holds", True)
    assert report(Console(file=io.StringIO()), rehearsal) is True
    rehearsal.scenario("two").check("does not hold", False)
    out = io.StringIO()
    assert report(Console(file=out, width=200), rehearsal) is False
    assert "FAILED  two: does not hold" in out.getvalue()
