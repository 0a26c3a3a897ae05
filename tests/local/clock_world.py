"""What the simulated-clock tests share: a probe handler, its function and state
machines, and readers of what moto stamps (tests/local/test_clock.py,
tests/local/test_stop_execution.py)."""

from __future__ import annotations

import io
import json
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3

from local import clock
from local.imagebuilder import imagebuilder_backends
from phoenix.kernel import clock as phoenix_clock

# Two of moto's AMIs, found by name: listing all 1,300 costs seconds per test.
ANY_TWO_AMIS: Any = [{"Name": "name", "Values": ["al2023-ami-2023*-arm64"]}]
REGION = "us-east-1"
ACCOUNT = "123456789012"
HOUR = 3600.0
HANDLER = "phoenix.probe_clock.runtime.handler.lambda_handler"
HANDLER_MODULE = HANDLER.rpartition(".")[0]
ROLE = "arn:aws:iam::123456789012:role/probe"


class Probe:
    """What the probe handler saw, call by call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []


probe = Probe()


def _probe_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    now = phoenix_clock.now()
    seen: dict[str, Any] = {
        "event": event,
        "now": now.isoformat(),
        "thread": threading.current_thread().name,
        "elapsed": clock.elapsed(),
    }
    if "dimensions" in event:
        # What the health gate does: the last five minutes of a target group's requests
        answer = boto3.client("cloudwatch").get_metric_data(
            MetricDataQueries=[
                {
                    "Id": "requests",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "AWS/ApplicationELB",
                            "MetricName": "RequestCount",
                            "Dimensions": event["dimensions"],
                        },
                        "Period": 60,
                        "Stat": "Sum",
                    },
                }
            ],
            StartTime=now - timedelta(minutes=5),
            EndTime=now,
        )
        (result,) = answer["MetricDataResults"]
        seen["timestamps"] = [t.isoformat() for t in result["Timestamps"]]
        seen["values"] = result["Values"]
    probe.calls.append(seen)
    if len(probe.calls) <= int(event.get("fail_first", 0)):
        raise RuntimeError(f"attempt {len(probe.calls)} fails")
    return {"now": seen["now"], "thread": seen["thread"]}


def _function() -> str:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(HANDLER_MODULE.replace(".", "/") + ".py", "")
    boto3.client("iam", region_name=REGION).create_role(
        RoleName="probe",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ]
            }
        ),
    )
    # What the health gate's role allows it (IAM is enforced on handlers' calls)
    boto3.client("iam", region_name=REGION).put_role_policy(
        RoleName="probe",
        PolicyName="metrics",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "cloudwatch:GetMetricData", "Resource": "*"}
                ],
            }
        ),
    )
    function = boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="phoenix-probe",
        Runtime="python3.14",
        Role=ROLE,
        Handler=HANDLER,
        Code={"ZipFile": archive.getvalue()},
        Timeout=30,
    )
    return str(function["FunctionArn"])


def _invoke(payload: dict[str, Any]) -> dict[str, Any]:
    response = boto3.client("lambda", region_name=REGION).invoke(
        FunctionName="phoenix-probe", Payload=json.dumps(payload).encode()
    )
    assert "FunctionError" not in response, response["Payload"].read()
    answer: dict[str, Any] = json.loads(response["Payload"].read())
    return answer


def _lead(moment: datetime | str) -> float:
    """Seconds `moment` is ahead of real time now."""
    aware = phoenix_clock.parse_time(moment)
    return (aware - datetime.now(UTC)).total_seconds()


def _an_hour_ahead(moment: datetime | str) -> bool:
    # stamped a little before it is compared: at most a few real seconds less than an hour
    return HOUR - 30 < _lead(moment) <= HOUR


def _machine(definition: dict[str, Any]) -> str:
    return str(
        boto3.client("stepfunctions", region_name=REGION).create_state_machine(
            name="probe",
            definition=json.dumps(definition),
            roleArn="arn:aws:iam::123456789012:role/states",
        )["stateMachineArn"]
    )


def _ended(execution_arn: str, timeout: float = 30.0) -> dict[str, Any]:
    stepfunctions = boto3.client("stepfunctions", region_name=REGION)
    deadline = time.monotonic() + timeout
    while True:
        events = stepfunctions.get_execution_history(executionArn=execution_arn)["events"]
        kinds = {e["type"] for e in events}
        ended = {"ExecutionSucceeded", "ExecutionFailed", "ExecutionAborted", "ExecutionTimedOut"}
        late = time.monotonic() > deadline
        if kinds & ended or late:
            # moto records the ending event a moment before the execution's status
            described = stepfunctions.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING" or late:
                return {**described, "history": events}
        time.sleep(0.05)


def _refresh_start_time() -> datetime:
    ec2 = boto3.client("ec2", region_name=REGION)
    images = ec2.describe_images(Filters=ANY_TWO_AMIS)["Images"]
    old_image, new_image = [i["ImageId"] for i in images[:2]]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/24")["Subnet"]["SubnetId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="worker", LaunchTemplateData={"ImageId": old_image}
    )["LaunchTemplate"]["LaunchTemplateId"]
    ec2.create_launch_template_version(
        LaunchTemplateId=template, LaunchTemplateData={"ImageId": new_image}
    )
    autoscaling = boto3.client("autoscaling", region_name=REGION)
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="worker",
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        MinSize=2,
        MaxSize=4,
        DesiredCapacity=2,
        VPCZoneIdentifier=subnet,
    )
    autoscaling.start_instance_refresh(
        AutoScalingGroupName="worker",
        DesiredConfiguration={"LaunchTemplate": {"LaunchTemplateId": template, "Version": "2"}},
        Preferences={"MinHealthyPercentage": 100, "MaxHealthyPercentage": 200},
    )
    (refresh,) = autoscaling.describe_instance_refreshes(AutoScalingGroupName="worker")[
        "InstanceRefreshes"
    ]
    started: datetime = refresh["StartTime"]
    return started


def _serving_target_group() -> list[dict[str, str]]:
    """A load balancer whose one target group has two healthy instances: its dimensions."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    elbv2 = boto3.client("elbv2", region_name=REGION)
    balancer = elbv2.create_load_balancer(Name="web", Subnets=subnets)["LoadBalancers"][0][
        "LoadBalancerArn"
    ]
    group = elbv2.create_target_group(Name="blue", Protocol="HTTP", Port=80, VpcId=vpc)[
        "TargetGroups"
    ][0]["TargetGroupArn"]
    elbv2.create_listener(
        LoadBalancerArn=balancer,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}],
    )
    image = imagebuilder_backends[ACCOUNT][REGION].bake(
        "phoenix-t-golden", "1.0.0", "healthy", "arm64"
    )
    instances = ec2.run_instances(ImageId=image.ami_id, MinCount=2, MaxCount=2, SubnetId=subnets[0])
    elbv2.register_targets(
        TargetGroupArn=group, Targets=[{"Id": i["InstanceId"]} for i in instances["Instances"]]
    )
    return [
        {"Name": "LoadBalancer", "Value": balancer.split("loadbalancer/")[1]},
        {"Name": "TargetGroup", "Value": group.rsplit(":", maxsplit=1)[-1]},
    ]
