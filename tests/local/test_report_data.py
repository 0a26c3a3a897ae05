"""The rehearsal report's data, without a browser (tests/integration/test_report.py opens
it in one): the samples a chart draws, the fleet an alarm is on, what a slot serves."""

from __future__ import annotations

from local.fleet_view import FleetView
from local.rehearsal import CONFIG_DIR, Moment, Rehearsal
from local.rehearsal.report import _fleet_of, render
from local.rehearsal.samples import Sample, Sampler


def _sample(at: float, green: int) -> Sample:
    return Sample(at, {"blue": 100 - green, "green": green}, {}, {})


def test_a_chart_starts_from_what_served_before_and_holds_the_last_to_its_end() -> None:
    sampler = Sampler(CONFIG_DIR, ["sandbox"])
    key = ("sandbox", "us-east-1", "web")
    sampler.samples[key] += [_sample(0, 0), _sample(120, 5), _sample(300, 25), _sample(900, 0)]
    points = sampler.between(key, 60, 400)
    assert [(p.simulated, p.weights["green"]) for p in points] == [
        (60, 0),
        (120, 5),
        (300, 25),
        (400, 25),
    ]
    assert sampler.between(("sandbox", "us-east-1", "api"), 0, 60) == []


def test_an_alarm_is_on_the_fleet_its_name_begins_with_the_longest_first() -> None:
    fleets = [("us-east-1", "web"), ("us-east-1", "web-admin"), ("us-west-2", "web-admin")]

    def alarm(name: str) -> Moment:
        return Moment("s", 0, 0, "alarm in ALARM", name, region="us-east-1", kind="alarm")

    on = ("prod", "us-east-1", "web-admin")
    assert _fleet_of(alarm("phoenix-prod-web-admin-blue-5xx"), "prod", fleets) == on
    assert _fleet_of(alarm("phoenix-prod-web-blue-5xx"), "prod", fleets) == (*on[:2], "web")
    assert _fleet_of(alarm("phoenix-test-web-5xx"), "prod", fleets) is None


def test_a_slot_s_weight_is_shared_by_its_instances() -> None:
    view = FleetView(
        instances_by_slot={"blue": {"ami-1": 2}, "green": {"ami-2": 1, "ami-3": 1}},
        desired_by_slot={"blue": 2, "green": 2},
        weights={"blue": 90, "green": 10},
        pointer="ami-1",
        fleet_item={},
    )
    assert view.traffic_by_ami() == {"ami-1": 90.0, "ami-2": 5.0, "ami-3": 5.0}
    assert view.amis_by_slot == {"blue": {"ami-1"}, "green": {"ami-2", "ami-3"}}


def test_what_the_report_shows_is_escaped_and_a_failed_check_stands_out() -> None:
    rehearsal = Rehearsal(aws=None)  # type: ignore[arg-type]  # render reads no AWS
    scenario = rehearsal.scenario("one <b>")
    rehearsal.note("web: Release Failed", "<script>alert(1)</script>")
    scenario.check("holds", False)
    rehearsal.finish()
    page = render(rehearsal, Sampler(CONFIG_DIR, ["sandbox"]))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "one &lt;b&gt;" in page
    assert '<li class="failed">FAILED: holds</li>' in page
