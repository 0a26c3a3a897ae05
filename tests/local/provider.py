"""A provider function for CloudFormation custom resources in the embedded AWS: the
ServiceToken a `Custom::AWS` resource names, with a role (local.iam authorizes its calls)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import boto3

REGION = "us-east-1"


def provider_function(grants: dict[str, Any]) -> None:
    """The function an AwsCustomResource's ServiceToken names: its calls are made with its
    role (local.iam), which may write and read phoenix's parameters."""
    iam = boto3.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName="provider", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="provider", PolicyName="calls", PolicyDocument=json.dumps(grants))
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="provider",
        Runtime="nodejs20.x",
        Role=role["Role"]["Arn"],
        Handler="index.handler",
        Code={"ZipFile": package.getvalue()},
    )
