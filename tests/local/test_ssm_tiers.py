"""Parameter Store's value limits by tier in the embedded AWS (local/ssm_tiers.py), as the
AWS Systems Manager User Guide, "Managing parameter tiers", documents them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import install_extensions
from tests.release.release_state import CREDENTIALS


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        install_extensions(None)
        yield boto3.client("ssm", region_name="us-east-1", **CREDENTIALS)


def _tier(ssm: Any, name: str) -> str:
    found = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])
    return str(found["Parameters"][0]["Tier"])


def test_a_standard_parameter_holds_4_kb_and_refuses_more_unwritten(ssm: Any) -> None:
    ssm.put_parameter(Name="/fits", Value="x" * 4096, Type="String", Tier="Standard")
    with pytest.raises(ClientError, match="maximum parameter value of 4096 characters"):
        ssm.put_parameter(Name="/large", Value="x" * 4097, Type="String", Tier="Standard")
    assert ssm.get_parameters(Names=["/large"])["InvalidParameters"] == ["/large"]
    with pytest.raises(ClientError, match="maximum parameter value of 4096 characters"):
        ssm.put_parameter(Name="/fits", Value="x" * 4097, Type="String", Overwrite=True)
    assert len(ssm.get_parameter(Name="/fits")["Parameter"]["Value"]) == 4096


def test_an_advanced_parameter_holds_8_kb_and_never_goes_back(ssm: Any) -> None:
    ssm.put_parameter(Name="/large", Value="x" * 8192, Type="String", Tier="Advanced")
    assert _tier(ssm, "/large") == "Advanced"
    with pytest.raises(ClientError, match="8192"):
        ssm.put_parameter(Name="/large", Value="x" * 8193, Type="String", Overwrite=True)
    with pytest.raises(ClientError, match="can't downgrade"):
        ssm.put_parameter(Name="/large", Value="x", Type="String", Tier="Standard", Overwrite=True)


def test_intelligent_tiering_makes_a_parameter_advanced_when_its_value_needs_it(
    ssm: Any,
) -> None:
    ssm.put_parameter(Name="/small", Value="x", Type="String", Tier="Intelligent-Tiering")
    assert _tier(ssm, "/small") == "Standard"
    ssm.put_parameter(
        Name="/small", Value="x" * 5000, Type="String", Tier="Intelligent-Tiering", Overwrite=True
    )
    assert _tier(ssm, "/small") == "Advanced"
