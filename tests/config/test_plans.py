"""Release plans in the config: waves resolved per region, and every bad plan refused with
one line naming the file, the field and the value."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from app import CONFIG_DIR
from phoenix.config.environment import ConfigError, EnvironmentConfig, load_environment
from phoenix.plan.runtime.windows import parse_hours

PRODUCTION: dict[str, Any] = yaml.safe_load((CONFIG_DIR / "production.yaml").read_text())
PLAN: dict[str, Any] = {
    "name": "golden",
    "image_pipeline": "golden",
    "waves": [
        {"name": "one-box", "fleets": ["web"], "bake_minutes": 60, "min_requests": 1000},
        {"name": "rest", "fleets": ["api", "worker"], "max_concurrency": 2},
    ],
    "blocked": [{"days": ["sat", "sun"], "timezone": "Europe/Berlin"}],
}


def _production(change: Callable[[dict[str, Any]], object] | None = None) -> dict[str, Any]:
    config = copy.deepcopy(PRODUCTION)
    config["name"] = "production"
    config["plans"] = [copy.deepcopy(PLAN)]
    if change is not None:
        change(config)
    return config


def _wave(config: dict[str, Any], index: int) -> dict[str, Any]:
    return config["plans"][0]["waves"][index]


def test_the_disaster_recovery_region_runs_the_primary_waves_last() -> None:
    config = EnvironmentConfig.model_validate(_production())

    waves = config.waves(config.plans[0])

    assert [(w.name, w.region, w.fleets) for w in waves] == [
        ("one-box", "us-east-1", ("web",)),
        ("rest", "us-east-1", ("api", "worker")),
        ("one-box-us-west-2", "us-west-2", ("web",)),
        ("rest-us-west-2", "us-west-2", ("api", "worker")),
    ]
    assert config.plan_for("golden") == config.plans[0]


def test_waves_naming_a_region_place_its_fleets_themselves() -> None:
    def dr_first(config: dict[str, Any]) -> None:
        config["plans"][0]["waves"].insert(
            0, {"name": "dr", "region": "us-west-2", "fleets": ["web", "api", "worker"]}
        )

    config = EnvironmentConfig.model_validate(_production(dr_first))

    waves = config.waves(config.plans[0])

    assert [(w.name, w.region) for w in waves] == [
        ("dr", "us-west-2"),
        ("one-box", "us-east-1"),
        ("rest", "us-east-1"),
    ]


BAD_PLANS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "unknown fleet in a wave": (
        lambda c: _wave(c, 0)["fleets"].append("shop"),
        "plans[0].waves[0].fleets: 'shop' is not a fleet of image pipeline 'golden' "
        "['api', 'web', 'worker']",
    ),
    "a fleet in two waves": (
        lambda c: _wave(c, 1)["fleets"].append("web"),
        "plans[0].waves: fleet 'web' is in two waves, 'one-box' and 'rest' in us-east-1",
    ),
    "a fleet in no wave": (
        lambda c: _wave(c, 1)["fleets"].remove("worker"),
        "plans[0].waves: fleets ['worker'] of image pipeline 'golden' are in no wave in us-east-1",
    ),
    "a region without a fleet": (
        lambda c: c["plans"][0]["waves"].append(
            {"name": "dr", "region": "us-west-2", "fleets": ["web"]}
        ),
        "plans[0].waves: fleets ['api', 'worker'] of image pipeline 'golden' are in no wave "
        "in us-west-2",
    ),
    "a region the environment does not deploy": (
        lambda c: _wave(c, 0).update(region="eu-west-1"),
        "plans[0].waves[0].region: 'eu-west-1' is not a region of this environment "
        "['us-east-1', 'us-west-2']",
    ),
    "concurrency below 1": (
        lambda c: _wave(c, 1).update(max_concurrency=0),
        "plans[0].waves[1].max_concurrency: 0: Input should be greater than or equal to 1",
    ),
    "negative bake": (
        lambda c: _wave(c, 0).update(bake_minutes=-5),
        "plans[0].waves[0].bake_minutes: -5: Input should be greater than or equal to 0",
    ),
    "unknown time zone": (
        lambda c: c["plans"][0]["blocked"][0].update(timezone="Europe/Atlantis"),
        "plans[0].blocked[0].timezone: 'Europe/Atlantis': is not an IANA time zone",
    ),
    "hours that do not parse": (
        lambda c: c["plans"][0]["blocked"].append({"hours": "6pm-8am"}),
        "plans[0].blocked[1].hours: '6pm-8am': is not an hour range such as 18:00-08:00",
    ),
    "an unknown day": (
        lambda c: c["plans"][0]["blocked"][0].update(days=["saturday"]),
        "plans[0].blocked[0].days[0]: 'saturday': Input should be 'mon', 'tue'",
    ),
    "a date that is not one": (
        lambda c: c["plans"][0]["blocked"].append({"dates": ["2026-02-30"]}),
        "plans[0].blocked[1].dates[0]: '2026-02-30': Input should be a valid date",
    ),
    "an empty window": (
        lambda c: c["plans"][0]["blocked"].append({"timezone": "UTC"}),
        "plans[0].blocked[1]: a blocked window needs days, dates or hours",
    ),
    "windows that block the whole week": (
        lambda c: c["plans"][0]["blocked"].append(
            {"days": ["mon", "tue", "wed", "thu", "fri"], "timezone": "Europe/Berlin"}
        ),
        "plans[0].blocked: the windows leave no minute of the week to start a wave in",
    ),
    "a plan on an unknown pipeline": (
        lambda c: c["plans"][0].update(image_pipeline="silver"),
        "plans[0].image_pipeline: 'silver' is not one of the image_pipelines ['golden']",
    ),
    "two plans for one pipeline": (
        lambda c: c["plans"].append(copy.deepcopy(PLAN) | {"name": "again"}),
        "plans[1].image_pipeline: 'golden' already has plan 'golden'",
    ),
    "two waves of one name": (
        lambda c: _wave(c, 1).update(name="one-box"),
        "plans[0].waves: 'one-box' appears more than once",
    ),
}


@pytest.mark.parametrize("case", BAD_PLANS, ids=list(BAD_PLANS))
def test_a_bad_plan_is_refused_with_one_line_naming_file_field_and_value(
    case: str, tmp_path: Path
) -> None:
    # Given production's config with a plan, and one bad change to the plan
    change, expected = BAD_PLANS[case]
    config = _production(change)
    del config["name"]
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(config))

    # When it is loaded
    with pytest.raises(ConfigError) as raised:
        load_environment("broken", tmp_path)

    # Then one line names the file, the field and the value
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith(f"{tmp_path / 'broken.yaml'}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("hours", "expected"), [("18:00-08:00", (1080, 480)), ("00:00-23:59", (0, 1439))]
)
def test_hour_ranges_parse_to_minutes_of_the_day(hours: str, expected: tuple[int, int]) -> None:
    assert parse_hours(hours) == expected


@pytest.mark.parametrize("hours", ["24:00-01:00", "08:00-08:00", "8:00-9:00", "08:00"])
def test_hour_ranges_that_are_not_are_refused(hours: str) -> None:
    with pytest.raises(ValueError, match="hour range"):
        parse_hours(hours)
