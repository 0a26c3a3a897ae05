"""The embedded AWS's CloudFormation fixes, each checked against documented AWS behaviour."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local import install_extensions
from local.cloudformation_resources import flatten, sdk_call_method
from tests.local.provider import provider_function

REGION = "us-east-1"


PROVIDER_GRANTS = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ssm:PutParameter", "ssm:GetParameter"],
            "Resource": "arn:aws:ssm:us-east-1:123456789012:parameter/*",
        }
    ],
}


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        install_extensions(None)
        provider_function(PROVIDER_GRANTS)
        yield


def _deploy(resources: dict[str, Any], outputs: dict[str, Any] | None = None) -> dict[str, Any]:
    template = {"Resources": resources, "Outputs": outputs or {}}
    client = boto3.client("cloudformation", region_name=REGION)
    client.create_stack(StackName="probe", TemplateBody=json.dumps(template))
    (stack,) = client.describe_stacks(StackName="probe")["Stacks"]
    return dict(stack)


def _outputs(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def _failure_reason() -> str:
    events = boto3.client("cloudformation", region_name=REGION).describe_stack_events(
        StackName="probe"
    )["StackEvents"]
    return next(e["ResourceStatusReason"] for e in events if e["ResourceStatus"] == "CREATE_FAILED")


def test_dynamic_references_read_the_parameter_at_deploy_time(aws: None) -> None:
    # Given a parameter, and a template that reads it through a dynamic reference
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/phoenix/t/web/ami", Value="ami-0123456789abcdef0", Type="String"
    )
    stack = _deploy(
        {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": "x"}}},
        {"Image": {"Value": "image {{resolve:ssm:/phoenix/t/web/ami}} in use"}},
    )
    # Then the deployed value is the parameter's
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert _outputs(stack)["Image"] == "image ami-0123456789abcdef0 in use"


def test_a_missing_parameter_fails_the_deploy(aws: None) -> None:
    stack = _deploy(
        {
            "Topic": {
                "Type": "AWS::SNS::Topic",
                "Properties": {"DisplayName": "{{resolve:ssm:/phoenix/nowhere}}"},
            }
        }
    )
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert "ParameterNotFound" in _failure_reason()


def test_alarms_are_created_with_metric_math_and_give_their_arn(aws: None) -> None:
    stack = _deploy(
        {
            "Rate": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "phoenix-t-web-5xx-rate",
                    "ComparisonOperator": "GreaterThanThreshold",
                    "EvaluationPeriods": 2,
                    "Threshold": 5,
                    "TreatMissingData": "notBreaching",
                    "Metrics": [
                        {"Id": "rate", "Expression": "100 * errors / requests", "ReturnData": True},
                        {
                            "Id": "errors",
                            "ReturnData": False,
                            "MetricStat": {
                                "Metric": {
                                    "Namespace": "AWS/ApplicationELB",
                                    "MetricName": "HTTPCode_Target_5XX_Count",
                                    "Dimensions": [{"Name": "TargetGroup", "Value": "tg"}],
                                },
                                "Period": 60,
                                "Stat": "Sum",
                            },
                        },
                        {
                            "Id": "requests",
                            "ReturnData": False,
                            "MetricStat": {
                                "Metric": {
                                    "Namespace": "AWS/ApplicationELB",
                                    "MetricName": "RequestCount",
                                },
                                "Period": 60,
                                "Stat": "Sum",
                            },
                        },
                    ],
                },
            }
        },
        {"Arn": {"Value": {"Fn::GetAtt": ["Rate", "Arn"]}}},
    )
    (alarm,) = boto3.client("cloudwatch", region_name=REGION).describe_alarms()["MetricAlarms"]
    assert alarm["AlarmName"] == "phoenix-t-web-5xx-rate"
    assert alarm["Threshold"] == 5.0
    assert alarm["EvaluationPeriods"] == 2
    assert {m["Id"] for m in alarm["Metrics"]} == {"rate", "errors", "requests"}
    assert _outputs(stack)["Arn"] == alarm["AlarmArn"]


def test_an_alarm_the_api_would_refuse_fails_the_deploy(aws: None) -> None:
    # Dimensions must be a list of name/value pairs (botocore's model checks it)
    stack = _deploy(
        {
            "Bad": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "bad",
                    "ComparisonOperator": "GreaterThanThreshold",
                    "EvaluationPeriods": 1,
                    "Threshold": 1,
                    "Dimensions": "TargetGroup=tg",
                    "MetricName": "m",
                    "Namespace": "n",
                    "Period": 60,
                    "Statistic": "Sum",
                },
            }
        }
    )
    assert stack["StackStatus"] == "CREATE_FAILED"
    assert "Dimensions" in _failure_reason()


def _vpc_and_groups() -> tuple[str, str, str]:
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="a", Description="a", VpcId=vpc)["GroupId"]
    other = ec2.create_security_group(GroupName="b", Description="b", VpcId=vpc)["GroupId"]
    return vpc, group, other


def test_security_group_egress_rules_are_created(aws: None) -> None:
    _, group, other = _vpc_and_groups()
    stack = _deploy(
        {
            "Egress": {
                "Type": "AWS::EC2::SecurityGroupEgress",
                "Properties": {
                    "GroupId": group,
                    "IpProtocol": "tcp",
                    "FromPort": 8080,
                    "ToPort": 8080,
                    "DestinationSecurityGroupId": other,
                },
            }
        }
    )
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    (described,) = boto3.client("ec2", region_name=REGION).describe_security_groups(
        GroupIds=[group]
    )["SecurityGroups"]
    assert {
        (p["FromPort"], p["UserIdGroupPairs"][0]["GroupId"])
        for p in described["IpPermissionsEgress"]
        if p.get("UserIdGroupPairs")
    } == {(8080, other)}


def test_a_listener_forwards_by_weight(aws: None) -> None:
    vpc, group, _ = _vpc_and_groups()
    ec2 = boto3.client("ec2", region_name=REGION)
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")[
            "Subnet"
        ]["SubnetId"]
        for i, z in enumerate("ab")
    ]
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/phoenix/t/web/green/weight", Value="25", Type="String"
    )
    group_props = {"Port": 80, "Protocol": "HTTP", "VpcId": vpc, "TargetType": "instance"}
    stack = _deploy(
        {
            "Balancer": {
                "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
                "Properties": {"Subnets": subnets, "SecurityGroups": [group]},
            },
            "Blue": {"Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": group_props},
            "Green": {
                "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
                "Properties": group_props,
            },
            "Listener": {
                "Type": "AWS::ElasticLoadBalancingV2::Listener",
                "Properties": {
                    "LoadBalancerArn": {"Ref": "Balancer"},
                    "Port": 80,
                    "Protocol": "HTTP",
                    "DefaultActions": [
                        {
                            "Type": "forward",
                            "ForwardConfig": {
                                "TargetGroups": [
                                    {"TargetGroupArn": {"Ref": "Blue"}, "Weight": 75},
                                    {
                                        "TargetGroupArn": {"Ref": "Green"},
                                        "Weight": "{{resolve:ssm:/phoenix/t/web/green/weight}}",
                                    },
                                ]
                            },
                        }
                    ],
                },
            },
        },
        {"Listener": {"Value": {"Ref": "Listener"}}},
    )
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    (listener,) = boto3.client("elbv2", region_name=REGION).describe_listeners(
        ListenerArns=[_outputs(stack)["Listener"]]
    )["Listeners"]
    weights = [g["Weight"] for g in listener["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]]
    assert weights == [75, 25]


def _aws_custom_resource(call: dict[str, Any]) -> dict[str, Any]:
    """A Custom::AWS resource as CDK's AwsCustomResource synthesizes it."""
    return {
        "Type": "Custom::AWS",
        "Properties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:provider",
            "Create": json.dumps(call),
            "InstallLatestAwsSdk": False,
        },
    }


def test_aws_custom_resource_runs_its_create_call(aws: None) -> None:
    put: dict[str, Any] = {
        "service": "SSM",
        "action": "PutParameter",
        "parameters": {"Name": "/phoenix/t/web/blue/min-size", "Value": "2", "Type": "String"},
        "physicalResourceId": {"id": "/phoenix/t/web/blue/min-size"},
    }
    stack = _deploy({"MinSize": _aws_custom_resource(put)}, {"Id": {"Value": {"Ref": "MinSize"}}})
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert _outputs(stack)["Id"] == "/phoenix/t/web/blue/min-size"
    parameter = boto3.client("ssm", region_name=REGION).get_parameter(
        Name=put["parameters"]["Name"]
    )
    assert parameter["Parameter"]["Value"] == "2"


def test_a_create_only_parameter_keeps_the_value_already_there(aws: None) -> None:
    # Given the controller's value, and a create call that must not overwrite it
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/phoenix/t/web/ami", Value="ami-0000000000000000c", Type="String")
    put = {
        "service": "SSM",
        "action": "PutParameter",
        "parameters": {
            "Name": "/phoenix/t/web/ami",
            "Value": "ami-0000000000000000b",
            "Type": "String",
            "Overwrite": False,
        },
        "physicalResourceId": {"id": "/phoenix/t/web/ami"},
        "ignoreErrorCodesMatching": "ParameterAlreadyExists",
    }
    assert _deploy({"Pointer": _aws_custom_resource(put)})["StackStatus"] == "CREATE_COMPLETE"
    assert (
        ssm.get_parameter(Name="/phoenix/t/web/ami")["Parameter"]["Value"]
        == "ami-0000000000000000c"
    )


def test_an_error_not_ignored_fails_the_deploy(aws: None) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/phoenix/t/x", Value="a", Type="String")
    put = {
        "service": "SSM",
        "action": "PutParameter",
        "parameters": {"Name": "/phoenix/t/x", "Value": "b", "Type": "String", "Overwrite": False},
        "physicalResourceId": {"id": "/phoenix/t/x"},
    }
    assert _deploy({"X": _aws_custom_resource(put)})["StackStatus"] == "CREATE_FAILED"
    assert "ParameterAlreadyExists" in _failure_reason()


def test_response_fields_are_flattened_and_limited_to_the_output_paths(aws: None) -> None:
    boto3.client("ssm", region_name=REGION).put_parameter(
        Name="/public/ami", Value="ami-0000000000000000d", Type="String"
    )
    get = {
        "service": "SSM",
        "action": "GetParameter",
        "parameters": {"Name": "/public/ami"},
        "physicalResourceId": {"id": "/public/ami"},
        "outputPaths": ["Parameter.Value"],
    }
    stack = _deploy(
        {"Read": _aws_custom_resource(get)},
        {"Value": {"Value": {"Fn::GetAtt": ["Read", "Parameter.Value"]}}},
    )
    assert _outputs(stack)["Value"] == "ami-0000000000000000d"


def test_sdk_v3_command_names_map_to_boto3_methods() -> None:
    assert sdk_call_method("PutParameter") == "put_parameter"
    assert sdk_call_method("DescribeAutoScalingGroupsCommand") == "describe_auto_scaling_groups"


def test_flatten_joins_nested_keys_with_dots() -> None:
    assert flatten({"Parameter": {"Value": "v", "Tags": [{"Key": "k"}]}}) == {
        "Parameter.Value": "v",
        "Parameter.Tags.0.Key": "k",
    }


def test_image_builder_resources_are_recorded_with_their_arns(aws: None) -> None:
    stack = _deploy(
        {
            "Recipe": {
                "Type": "AWS::ImageBuilder::ImageRecipe",
                "Properties": {
                    "Name": "phoenix-t-golden",
                    "Version": "1.2.0",
                    "ParentImage": "ami-0123456789abcdef0",
                    "Components": [],
                },
            },
            "Infrastructure": {
                "Type": "AWS::ImageBuilder::InfrastructureConfiguration",
                "Properties": {"Name": "phoenix-t-golden", "InstanceProfileName": "p"},
            },
            "Pipeline": {
                "Type": "AWS::ImageBuilder::ImagePipeline",
                "Properties": {
                    "Name": "phoenix-t-golden",
                    "ImageRecipeArn": {"Ref": "Recipe"},
                    "InfrastructureConfigurationArn": {"Fn::GetAtt": ["Infrastructure", "Arn"]},
                },
            },
        },
        {
            "Recipe": {"Value": {"Ref": "Recipe"}},
            "Pipeline": {"Value": {"Fn::GetAtt": ["Pipeline", "Arn"]}},
        },
    )
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = _outputs(stack)
    assert (
        outputs["Recipe"]
        == "arn:aws:imagebuilder:us-east-1:123456789012:image-recipe/phoenix-t-golden/1.2.0"
    )
    assert (
        outputs["Pipeline"]
        == "arn:aws:imagebuilder:us-east-1:123456789012:image-pipeline/phoenix-t-golden"
    )
