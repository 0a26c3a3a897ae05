"""Run Command in the embedded AWS (local/run_command.py) as Systems Manager's API
reference gives it: SendCommand takes at most 50 instance IDs, and ListCommandInvocations
(which moto lacks) answers a command's invocations a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

import local

REGION = "us-east-1"


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        local.install_extensions()
        yield boto3.client("ssm", region_name=REGION)


def _send(ssm: Any, instances: list[str]) -> str:
    sent = ssm.send_command(
        InstanceIds=instances,
        DocumentName="AWS-RunShellScript",
        Parameters={"commands": ["true"]},
    )
    return str(sent["Command"]["CommandId"])


def test_a_command_for_more_than_50_instances_is_refused(ssm: Any) -> None:
    with pytest.raises(ClientError, match="less than or equal to 50") as refused:
        _send(ssm, [f"i-{n:017x}" for n in range(51)])
    assert refused.value.response["Error"]["Code"] == "ValidationException"


def test_a_command_s_invocations_are_listed_a_page_at_a_time_with_their_plugins(ssm: Any) -> None:
    instances = [f"i-{n:017x}" for n in range(50)]
    command = _send(ssm, instances)
    _send(ssm, ["i-0000000000000ffff"])  # another command's invocation is not listed

    first = ssm.list_command_invocations(CommandId=command, MaxResults=30, Details=True)
    second = ssm.list_command_invocations(
        CommandId=command, MaxResults=30, Details=True, NextToken=first["NextToken"]
    )

    listed = first["CommandInvocations"] + second["CommandInvocations"]
    assert sorted(i["InstanceId"] for i in listed) == instances
    assert "NextToken" not in second
    (plugin,) = listed[0]["CommandPlugins"]
    assert (listed[0]["Status"], plugin["Status"], plugin["ResponseCode"]) == (
        "Success",
        "Success",
        0,
    )
    paged = ssm.get_paginator("list_command_invocations").paginate(CommandId=command)
    assert sum(len(page["CommandInvocations"]) for page in paged) == 50


def test_a_command_runs_on_the_instances_it_names_only(ssm: Any) -> None:
    ec2 = boto3.client("ec2", region_name=REGION)
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    launched = ec2.run_instances(ImageId=image, MinCount=3, MaxCount=3)["Instances"]
    named = [launched[0]["InstanceId"]]

    command = _send(ssm, named)

    listed = ssm.list_command_invocations(CommandId=command)["CommandInvocations"]
    assert [i["InstanceId"] for i in listed] == named
