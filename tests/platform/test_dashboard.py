"""The environment's dashboard and the alarm on failed releases
(phoenix/platform/dashboard.py), as synthesized."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk.assertions import Template

from phoenix.kernel.settings import ReleaseSettings
from tests.conftest import SynthesizedApp


def _body(template: Template, name: str) -> dict[str, Any]:
    (dashboard,) = [
        d["Properties"]
        for d in template.find_resources("AWS::CloudWatch::Dashboard").values()
        if d["Properties"]["DashboardName"] == name
    ]
    parts = dashboard["DashboardBody"]["Fn::Join"][1]
    # each reference (a target group's or load balancer's full name) as a placeholder
    return dict(json.loads("".join(p if isinstance(p, str) else "ref" for p in parts)))


@pytest.mark.parametrize(
    ("environment", "name"),
    [("sandbox", "phoenix-sandbox"), ("production", "phoenix-production-us-east-1")],
)
def test_the_dashboard_charts_releases_rollbacks_judgments_and_each_fleets_slots(
    synthesized: SynthesizedApp, environment: str, name: str
) -> None:
    template = Template.from_json(synthesized.template(f"phoenix-{environment}"))
    body = _body(template, name)
    titles = [w["properties"].get("title") for w in body["widgets"]]
    assert titles[:4] == [
        "releases per hour, by outcome",
        "release duration (s)",
        "time to rollback (s): alarm to traffic back",
        "canary judgment scores (0-100)",
    ]
    fleets = synthesized.configs[environment].fleets
    assert titles[4:] == [
        t
        for f in fleets
        for t in (f"{f.name}: 5xx rate (%) per slot", f"{f.name}: p99 latency (s) per slot")
    ]
    # the functions publish under the environment's namespace, which the charts read
    namespace = ReleaseSettings(environment=environment, service_name="x", table_name="t")
    text = json.dumps(body)
    assert f'"{namespace.metrics_namespace}"' in text
    for metric in ("ReleasesSucceeded", "ReleasesRolledBack", "ReleasesFailed", "ReleaseDuration",
                   "TimeToRollback", "CanaryJudgmentScore"):  # fmt: skip
        assert f'"{metric}"' in text, metric
    # a slot's 5xx rate is the alarm's own expression
    assert text.count("100 * FILL(") >= len(fleets)


def test_a_failed_release_raises_an_alarm_no_fleet_rolls_back_on(
    synthesized: SynthesizedApp,
) -> None:
    template = Template.from_json(synthesized.template("phoenix-sandbox"))
    (alarm,) = [
        a["Properties"]
        for a in template.find_resources("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["AlarmName"] == "phoenix-sandbox--releases-failed"
    ]
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0
    metrics = {m["Id"]: m for m in alarm["Metrics"]}
    named = {
        (
            m["MetricStat"]["Metric"]["MetricName"],
            m["MetricStat"]["Metric"]["Dimensions"][0]["Value"],
        )
        for m in metrics.values()
        if "MetricStat" in m
    }
    assert named == {
        ("ReleasesFailed", "phoenix-release-finalize"),
        ("ReleasesFailed", "phoenix-release-cleanup"),
    }
    # (a fleet's name never begins with "-": the rollback function finds no fleet in it)
    assert alarm["AlarmName"].startswith("phoenix-sandbox--")
