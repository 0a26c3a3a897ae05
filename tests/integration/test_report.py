"""The rehearsal's report (`make demo`) from real releases: a canary release of web and an
erroring image its alarm rolls back, sampled as the rehearsal samples them, written to
HTML and opened in headless Chromium (tests/browser.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from local import clock
from local.embedded import REGION, EmbeddedAws
from local.rehearsal import Rehearsal, watch_timeline
from local.rehearsal import report as html_report
from local.rehearsal.samples import Sample, Sampler
from tests.browser import opened
from tests.integration.conftest import CONFIG
from tests.integration.fleet_view import request_release

WEB = ("sandbox", REGION, "web")
SCENARIOS = {"a healthy canary": "healthy", "an erroring canary": "erroring"}
# the erroring canary's alarm fires on its traffic: the rollback function stops it
ENDED = {"healthy": "SUCCEEDED", "erroring": "ABORTED"}


@pytest.fixture(scope="module")
def rehearsed(aws: EmbeddedAws) -> tuple[Rehearsal, Sampler]:
    rehearsal, sampler = Rehearsal(aws), Sampler(CONFIG, ["sandbox"])
    stop, unwatch = watch_timeline(aws, rehearsal), clock.watch(sampler)
    try:
        for number, (name, health) in enumerate(SCENARIOS.items()):
            scenario = rehearsal.scenario(name)
            aws.advance(300)  # an earlier module's alarms recover
            baked = aws.bake(pipeline="scratch", version=f"7.{number}.0", health=health)
            rehearsal.baked(f"7.{number}.0", [baked.ami])
            outcome = request_release(aws, "web", baked.ami)["status"]
            scenario.check(f"the release ended {outcome}", outcome == ENDED[health])
        rehearsal.finish()
    finally:
        unwatch()
        stop()
    return rehearsal, sampler


def _weights(points: list[Sample], slot: str) -> list[int]:
    """A slot's weight each time it changed."""
    seen: list[int] = []
    for point in points:
        weight = point.weights.get(slot, 0)
        if not seen or seen[-1] != weight:
            seen.append(weight)
    return seen


def test_the_samples_follow_the_canary_steps_then_the_rollback(
    rehearsed: tuple[Rehearsal, Sampler],
) -> None:
    rehearsal, sampler = rehearsed
    healthy, erroring = rehearsal.scenarios
    assert [held for _, held in healthy.checks + erroring.checks] == [True, True]
    first = sampler.between(WEB, healthy.began, healthy.ended)
    target = next(slot for slot, weight in first[0].weights.items() if weight == 0)
    # web's steps (tests/integration/config/sandbox.yaml): 5, 25, 50, 100
    assert _weights(first, target) == [0, 5, 25, 50, 100]
    (new,) = [ami for ami, version in rehearsal.versions.items() if version == "7.0.0"]
    assert first[-1].traffic == {new: 100.0}

    second = sampler.between(WEB, erroring.began, erroring.ended)
    back = next(slot for slot, weight in second[0].weights.items() if weight == 0)
    assert _weights(second, back) == [0, 5, 0]  # the alarm took it back at the first step
    assert second[-1].traffic == {new: 100.0}
    kinds = [m.kind for m in rehearsal.moments if m.scenario == erroring.name]
    assert "alarm" in kinds
    assert "rollback" in kinds


def test_the_report_shows_a_chart_per_scenario_in_a_browser(
    rehearsed: tuple[Rehearsal, Sampler], tmp_path: Path
) -> None:
    rehearsal, sampler = rehearsed
    page_file = html_report.write(rehearsal, sampler, tmp_path / "report.html")

    with opened(page_file) as seen:
        page = seen.page
        page.wait_for_selector(".chart .scatterlayer .trace")
        sections = page.query_selector_all("section.scenario")
        titles = [page.inner_text(f"#{s.get_attribute('id')} h2") for s in sections]
        assert titles == list(SCENARIOS)
        for section, scenario in zip(sections, rehearsal.scenarios, strict=True):
            (chart,) = section.query_selector_all(".chart")
            assert chart.get_attribute("data-fleet") == "web"
            # plotly drew every line: two slots and the AMIs, each a path with points
            lines = chart.query_selector_all(".scatterlayer .trace path.js-line")
            assert len(lines) >= 4
            assert all(len(line.get_attribute("d") or "") > 10 for line in lines)
            box = chart.bounding_box()
            assert box is not None
            assert box["width"] > 600
            assert box["height"] > 300
            legend = [t.text_content() for t in chart.query_selector_all(".legendtext")]
            assert {"slot blue", "slot green"} <= set(legend)
            moments = [m for m in rehearsal.moments if m.scenario == scenario.name]
            rows = section.query_selector_all("table.timeline tbody tr")
            assert len(rows) == len(moments) > 0
        marked = [{t.text_content() for t in s.query_selector_all(".legendtext")} for s in sections]
        assert "gate" in marked[0]  # the canary's judged steps and health gates
        assert {"alarm", "rollback"} <= marked[1]
        assert seen.errors == []
        assert seen.requests == []  # self-contained: nothing fetched
