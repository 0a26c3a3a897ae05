"""What the `phoenix` command needs of each region's stack: the environment record it
starts from, and the ledger's history index its `history` queries."""

from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from phoenix.kernel.history import HISTORY_INDEX
from phoenix.kernel.names import environment_record
from tests.conftest import SynthesizedApp
from tests.ledger_table import create_ledger_table


@pytest.mark.parametrize("stack", ["phoenix-sandbox", "phoenix-production"])
def test_each_region_records_where_its_controller_is(
    synthesized: SynthesizedApp, stack: str
) -> None:
    template = Template.from_json(synthesized.template(stack))
    environment = stack.removeprefix("phoenix-")
    (record,) = [
        p["Properties"]
        for p in template.find_resources("AWS::SSM::Parameter").values()
        if p["Properties"].get("Name") == environment_record(environment)
    ]
    value = record["Value"]["Fn::Join"][1]
    written = "".join(part if isinstance(part, str) else "<ref>" for part in value)
    assert written.startswith(f'{{"environment":"{environment}","table":"<ref>"')
    assert '"state_machine":"<ref>","topic":"<ref>","primary":true}' in written


def test_the_ledger_indexes_releases_by_fleet_and_start_time(synthesized: SynthesizedApp) -> None:
    template = Template.from_json(synthesized.template("phoenix-sandbox"))
    (table,) = template.find_resources("AWS::DynamoDB::Table").values()
    (index,) = table["Properties"]["GlobalSecondaryIndexes"]
    assert index == {
        "IndexName": HISTORY_INDEX,
        "KeySchema": [
            {"AttributeName": "fleet", "KeyType": "HASH"},
            {"AttributeName": "started_at", "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "ALL"},
    }
    # the table the moto tests create is the same
    recorded: dict[str, object] = {}

    class Recorder:
        def create_table(self, **request: object) -> None:
            recorded.update(request)

    create_ledger_table(Recorder(), "ledger")
    assert recorded["GlobalSecondaryIndexes"] == [index]
