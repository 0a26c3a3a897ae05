"""checkov on every template this session synthesizes (config/ and examples/promotion):
no failed check, and every skipped check skipped on its resource with a reason
(docs/scanners.md)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from phoenix.platform.nag import skip_checkov
from tests.conftest import SynthesizedApp

REPO = Path(__file__).resolve().parents[1]
# Its own environment (requirements-checkov.txt): it pins boto3 to another version.
CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
SCANNERS = REPO / "docs/scanners.md"
# checkov reaches no network: with no API key (HOME is a fresh folder, so no saved one
# either) it calls the platform only for its policy mappings and guidelines, which
# --skip-download and BC_SKIP_MAPPING turn off; the one other call, the banner's check
# for a newer version, is CKV_SKIP_PACKAGE_UPDATE_CHECK's.
OFFLINE = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE"}
# What checkov says for a skip whose metadata gives no comment.
NO_COMMENT = "No comment provided"
# A reason says why the check does not apply to the resource: a sentence, not a word.
SHORTEST_REASON = 30
# The whole scan's run time, in `make test` beside the integration tests (about 20 s
# alone on the project's 2-core machine): a bound that catches a scan gone wrong.
SLOWEST_SCAN_SECONDS = 90


@dataclass(frozen=True)
class Scan:
    """One checkov run: its JSON report per framework, and how long it took."""

    reports: list[dict[str, Any]]
    seconds: float

    def checks(self, kind: str) -> list[dict[str, Any]]:
        return [check for report in self.reports for check in report["results"][kind]]

    def summary(self, key: str) -> int:
        return sum(int(report["summary"][key]) for report in self.reports)


def run_checkov(templates: list[Path], home: Path) -> Scan:
    """checkov's CloudFormation checks on `templates`, in one process, offline."""
    assert CHECKOV.is_file(), f"{CHECKOV} is missing: `make test` installs it"
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BC_", "CKV_", "CHECKOV_", "PRISMA_"))
    }
    environment |= OFFLINE | {"HOME": str(home)}
    files = [argument for path in templates for argument in ("--file", str(path))]
    started = time.monotonic()
    done = subprocess.run(
        [
            str(CHECKOV),
            *files,
            "--framework",
            "cloudformation",
            "--skip-download",
            "--compact",
            "--output",
            "json",
        ],
        cwd=home,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    seconds = time.monotonic() - started
    # 0: every check passed or was skipped; 1: some check failed. Anything else is
    # checkov failing to run.
    assert done.returncode in (0, 1), done.stderr
    report = json.loads(done.stdout)
    return Scan(reports=report if isinstance(report, list) else [report], seconds=seconds)


def failures(scan: Scan) -> list[str]:
    return [
        f"{check['file_path']}: {check['check_id']} {check['resource']} ({check['check_name']})"
        for check in scan.checks("failed_checks")
    ]


def unexplained_skips(scan: Scan) -> list[str]:
    """The skips whose comment is missing or says nothing."""
    return [
        f"{check['file_path']}: {check['check_id']} {check['resource']}: {comment!r}"
        for check in scan.checks("skipped_checks")
        if (comment := check["check_result"].get("suppress_comment") or NO_COMMENT) == NO_COMMENT
        or len(comment) < SHORTEST_REASON
    ]


@pytest.fixture(scope="module")
def scan(
    synthesized: SynthesizedApp,
    promotion_synthesized: SynthesizedApp,
    tmp_path_factory: pytest.TempPathFactory,
) -> Scan:
    """Every template of both apps, as the session synthesized them, in one checkov run."""
    templates = [
        Path(artifact.template_full_path)
        for app in (synthesized, promotion_synthesized)
        for artifact in app.stack_artifacts()
    ]
    result = run_checkov(templates, tmp_path_factory.mktemp("checkov"))
    counts = ", ".join(f"{k} {result.summary(k)}" for k in ("passed", "failed", "skipped"))
    print(f"checkov: {len(templates)} templates in {result.seconds:.1f} s: {counts}")  # -s
    assert result.summary("resource_count") > 0
    assert len({check["file_path"] for check in result.checks("passed_checks")}) == len(templates)
    return result


def test_no_checkov_check_fails_on_any_template(scan: Scan) -> None:
    assert scan.summary("parsing_errors") == 0
    assert failures(scan) == []


def test_every_skip_is_on_a_resource_with_a_reason(scan: Scan) -> None:
    assert scan.checks("skipped_checks")
    assert unexplained_skips(scan) == []


def documented_skips() -> set[str]:
    """The checks in the first column of docs/scanners.md's table of skipped checks."""
    section = SCANNERS.read_text().split("\n## Skipped", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([^|]+) \|", section, re.MULTILINE)
    return {check for row in rows for check in re.findall(r"CKV2?_AWS_\d+", row)}


def test_the_skipped_checks_are_the_ones_docs_scanners_lists(scan: Scan) -> None:
    assert {check["check_id"] for check in scan.checks("skipped_checks")} == documented_skips()


def test_the_scan_is_quick_enough_for_make_test(scan: Scan) -> None:
    assert scan.seconds < SLOWEST_SCAN_SECONDS, f"checkov took {scan.seconds:.1f} s"


QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}}


def test_the_scan_fails_on_a_bad_resource_and_a_skip_without_a_reason(tmp_path: Path) -> None:
    # Given a template with an unencrypted queue, and one that skips the queue's check
    # without saying why
    plain = tmp_path / "plain.template.json"
    plain.write_text(json.dumps({"Resources": {"Plain": QUEUE}}))
    unexplained = tmp_path / "unexplained.template.json"
    skip = {"checkov": {"skip": [{"id": "CKV_AWS_27"}]}}
    unexplained.write_text(json.dumps({"Resources": {"Unexplained": QUEUE | {"Metadata": skip}}}))

    # When checkov scans them as it scans phoenix's templates
    scan = run_checkov([plain, unexplained], tmp_path)

    # Then the first fails on encryption, and the second's skip is refused
    assert [f for f in failures(scan) if "CKV_AWS_27" in f and "Plain" in f]
    assert [s for s in unexplained_skips(scan) if "CKV_AWS_27" in s and "Unexplained" in s]


def _queue() -> sqs.Queue:
    return sqs.Queue(cdk.Stack(cdk.App(), "Skips"), "Queue")


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_skip_without_a_reason_is_refused(reason: str) -> None:
    with pytest.raises(ValueError, match="CKV_AWS_27 skipped on Skips/Queue without a reason"):
        skip_checkov(_queue(), "CKV_AWS_27", reason)


def test_a_skip_is_on_the_one_resource_and_keeps_every_reason() -> None:
    # Given a queue whose encryption check is skipped twice, for two reasons, and another
    queue = _queue()
    skip_checkov(queue, "CKV_AWS_27", "The first reason why it does not apply here.")
    skip_checkov(queue, "CKV_AWS_27", "The second reason why it does not apply here.")
    skip_checkov(queue, "CKV_AWS_27", "The first reason why it does not apply here.")
    skip_checkov(queue, "CKV_AWS_73", "Another check, for a reason of its own.")

    # Then the queue's own resource holds one skip per check, with both reasons
    resource = queue.node.default_child
    assert isinstance(resource, cdk.CfnResource)
    assert resource.get_metadata("checkov") == {
        "skip": [
            {
                "id": "CKV_AWS_27",
                "comment": "The first reason why it does not apply here. "
                "Also: The second reason why it does not apply here.",
            },
            {"id": "CKV_AWS_73", "comment": "Another check, for a reason of its own."},
        ]
    }


def test_a_skip_needs_a_resource() -> None:
    stack = cdk.Stack(cdk.App(), "Skips")
    with pytest.raises(TypeError, match="Skips/Nothing is no CloudFormation resource"):
        skip_checkov(Construct(stack, "Nothing"), "CKV_AWS_27", "A reason long enough here.")
