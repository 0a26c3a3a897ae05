"""Promotion between environments in the config: each environment's place in the order,
read from the other files of its folder, and every bad order refused with one line naming
the file, the field and the value."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from phoenix.config.environment import ConfigError, load_environment
from phoenix.config.promotion import Peer

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "promotion"
STAGING: dict[str, Any] = yaml.safe_load((EXAMPLE / "staging.yaml").read_text())
PRODUCTION: dict[str, Any] = yaml.safe_load((EXAMPLE / "production.yaml").read_text())

Change = Callable[[dict[str, Any], dict[str, Any]], object]


def _folder(tmp_path: Path, change: Change | None = None) -> Path:
    """The example's two files in a folder of their own, changed by `change`."""
    staging, production = copy.deepcopy(STAGING), copy.deepcopy(PRODUCTION)
    if change is not None:
        change(staging, production)
    for name, raw in (("staging", staging), ("production", production)):
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw))
    return tmp_path


def test_the_example_order_is_known_on_both_sides() -> None:
    staging = load_environment("staging", EXAMPLE)
    production = load_environment("production", EXAMPLE)

    assert production.promotions.source == Peer("staging", "111122223333", "us-east-1")
    assert production.promotions.from_another_account
    assert production.promoted("golden")
    assert staging.promotions.promotes_to == (Peer("production", "444455556666", "us-east-1"),)
    assert staging.promotions.to_another_account
    assert not staging.promoted("golden")


def test_an_environment_hears_of_every_later_one_and_refuses_what_any_earlier_rolled_back(
    tmp_path: Path,
) -> None:
    # sandbox -> staging -> production, in one account
    def chain(staging: dict[str, Any], production: dict[str, Any]) -> None:
        for raw in (staging, production):
            raw.pop("account")
        staging["image_pipelines"][0].pop("launch_permission_accounts")
        staging["promotion"] = {"after": "sandbox", "bake_minutes": 0}

    folder = _folder(tmp_path, chain)
    sandbox = copy.deepcopy(STAGING)
    sandbox.pop("account")
    (folder / "sandbox.yaml").write_text(yaml.safe_dump(sandbox))

    first = load_environment("sandbox", folder).promotions
    last = load_environment("production", folder).promotions

    assert [p.name for p in first.promotes_to] == ["staging"]
    assert sorted(p.name for p in first.later) == ["production", "staging"]
    assert [p.name for p in last.earlier] == ["staging", "sandbox"]
    assert not last.from_another_account


BAD: list[tuple[Change, str]] = [
    (
        lambda s, _: s.update(promotion={"after": "production"}),
        "promotion.after: the promotion order has a cycle (production -> staging -> production)",
    ),
    (
        lambda _, p: p.update(promotion={"after": "qa"}),
        "promotion.after: 'qa' is not an environment of the config folder "
        "(known: production, staging)",
    ),
    (
        lambda _, p: p["promotion"].update(after="production"),
        "promotion.after: an environment cannot follow itself",
    ),
    (
        lambda _, p: p["promotion"].update(bake_minutes=-5),
        "promotion.bake_minutes: -5: Input should be greater than or equal to 0",
    ),
    (
        lambda _, p: p.update(notifications={"emails": []}),
        "promotion.approval: needs a notification target to ask for approval "
        "(set notifications.emails)",
    ),
    (
        lambda _, p: p.update(plans=[]),
        "promotion: needs plans (promoted images go through this environment's plans)",
    ),
    (
        lambda s, _: s.update(plans=[]),
        "promotion.after: 'staging' has no plan for image pipeline 'golden' (plans[0])",
    ),
    (
        lambda s, _: s["image_pipelines"][0].update(launch_permission_accounts=[]),
        "promotion.after: 'staging''s image pipeline 'golden' does not share its AMIs with "
        "this environment's account 444455556666 (add it to its launch_permission_accounts)",
    ),
    (
        lambda s, _: s.pop("account"),
        "promotion.after: 'staging' and this environment must both name their account",
    ),
    (
        lambda s, _: s.update(region="eu-west-1"),
        "promotion.after: 'staging''s images reach no region us-east-1",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD)
def test_a_bad_promotion_is_refused_with_one_line_naming_the_field(
    tmp_path: Path, change: Change, message: str
) -> None:
    folder = _folder(tmp_path, change)
    with pytest.raises(ConfigError) as raised:
        load_environment("production", folder)
    text = str(raised.value)
    assert "\n" not in text
    assert text.startswith(str(folder / "production.yaml") + ": ")
    assert message in text


def test_a_broken_earlier_environment_names_its_own_file(tmp_path: Path) -> None:
    folder = _folder(tmp_path, lambda s, _: s.update(fleets=[]))
    with pytest.raises(ConfigError, match=r"staging\.yaml: fleets: \[\]"):
        load_environment("production", folder)
