"""AMIs shared across accounts in the embedded AWS (local/shared_images.py and
local/shared_keys.py): launch permission decides whether another account sees and
launches an AMI, and the key policy of the key that encrypts its snapshot whether the
launch succeeds."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aws_cdk as cdk
import boto3
import pytest
from aws_cdk import aws_kms as kms
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.ec2.models import ec2_backends

from local import install_extensions
from phoenix.plan.runtime.promotion import AUTOSCALING_GRANT_OPERATIONS
from phoenix.platform.encryption import EnvironmentKey

REGION = "us-east-1"
OWNER, CONSUMER = "111111111111", "222222222222"  # A bakes and shares, B launches
CLIENT_ERROR = {
    "Code": "Client.InternalError",
    "Message": "Client.InternalError: Client error on launch",
}


def _resolve(value: Any, account: str) -> Any:
    """A synthesized value with `Fn::Join` and the pseudo parameters resolved, as
    CloudFormation deploys it in `account`."""
    pseudo = {"AWS::AccountId": account, "AWS::Partition": "aws", "AWS::Region": REGION}
    if isinstance(value, list):
        return [_resolve(v, account) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return pseudo[value["Ref"]]
    if set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(p, account) for p in parts)
    assert not any(k.startswith("Fn::") for k in value), value
    return {k: _resolve(v, account) for k, v in value.items()}


@pytest.fixture(scope="module")
def phoenix_key_policy() -> dict[str, Any]:
    """The key policy phoenix's EnvironmentKey synthesizes when it shares with B, as
    synthesis renders it into the template's KeyPolicy (the stack resolves the key's
    policy document) and CloudFormation deploys it in A."""
    stack = cdk.Stack(cdk.App(), "Keys")
    key = EnvironmentKey(stack, "Key", environment="sandbox")
    key.share_with([CONSUMER])
    resource = key.key.node.default_child
    assert isinstance(resource, kms.CfnKey)
    policy: dict[str, Any] = _resolve(stack.resolve(resource.key_policy), OWNER)
    return policy


def _without(policy: dict[str, Any], sid: str) -> dict[str, Any]:
    assert any(s.get("Sid") == sid for s in policy["Statement"]), sid
    return {**policy, "Statement": [s for s in policy["Statement"] if s.get("Sid") != sid]}


def _allow(principal: str, *actions: str) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": {"AWS": principal},
        "Action": list(actions),
        "Resource": "*",
    }


def key_policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


# The Auto Scaling guide's key policy statement for another account's use of the key, and
# the grant that account gives its Auto Scaling role (Example 2)
USE = ("kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey")
# The grant phoenix's promoted plan run gives this account's Auto Scaling role.
GRANT_OPERATIONS = AUTOSCALING_GRANT_OPERATIONS
AUTO_SCALING_ROLE = (
    f"arn:aws:iam::{CONSUMER}:role/aws-service-role/autoscaling.amazonaws.com/"
    "AWSServiceRoleForAutoScaling"
)


def _client(account: str, service: str) -> Any:
    """A client acting in `account`: moto switches accounts on an assumed role's keys."""
    credentials = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/admin", RoleSessionName="test"
    )["Credentials"]
    make: Callable[..., Any] = boto3.client  # boto3's stubs type clients by literal names
    return make(
        service,
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


@dataclass
class Accounts:
    owner_ec2: Any  # A's
    owner_kms: Any
    ec2: Any  # B's
    kms: Any
    autoscaling: Any
    keys: dict[str, str] = field(default_factory=dict)  # AMI -> the key of its snapshot

    def bake(self, policy: dict[str, Any] | None = None) -> str:
        """An AMI of A, tagged by A; with `policy`, its snapshot encrypted with a key of A
        that has that key policy.

        moto's RegisterImage ignores BlockDeviceMappings and gives every AMI an
        unencrypted snapshot of its own, so the encrypted snapshot (made through the API:
        CopySnapshot keeps the KmsKeyId, CreateSnapshot drops it) is put in its place."""
        ami = str(self.owner_ec2.register_image(Name="golden")["ImageId"])
        self.owner_ec2.create_tags(Resources=[ami], Tags=[{"Key": "phoenix:health", "Value": "ok"}])
        if policy is None:
            return ami
        key = self.owner_kms.create_key(Policy=json.dumps(policy))["KeyMetadata"]["Arn"]
        volume = self.owner_ec2.create_volume(Size=8, AvailabilityZone=f"{REGION}a")["VolumeId"]
        plain = self.owner_ec2.create_snapshot(VolumeId=volume)["SnapshotId"]
        encrypted = self.owner_ec2.copy_snapshot(
            SourceSnapshotId=plain, SourceRegion=REGION, Encrypted=True, KmsKeyId=key
        )["SnapshotId"]
        backend = ec2_backends[OWNER][REGION]
        backend.amis[ami].ebs_snapshot = backend.snapshots[encrypted]
        self.keys[ami] = key
        return ami

    def share(self, ami: str) -> None:
        self.owner_ec2.modify_image_attribute(
            ImageId=ami, LaunchPermission={"Add": [{"UserId": CONSUMER}]}
        )

    def grant_auto_scaling(self, ami: str, grantee: str = AUTO_SCALING_ROLE) -> None:
        """B's grant on the key of the AMI's snapshot (by its ARN) for `grantee`."""
        self.kms.create_grant(
            KeyId=self.keys[ami], GranteePrincipal=grantee, Operations=GRANT_OPERATIONS
        )

    def launch(self, ami: str) -> dict[str, Any]:
        (instance,) = self.ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"]
        (reservation,) = self.ec2.describe_instances(InstanceIds=[instance["InstanceId"]])[
            "Reservations"
        ]
        return dict(reservation["Instances"][0])

    def group_from(self, ami: str, name: str = "web") -> str:
        """An Auto Scaling group of B that wants one instance from `ami`, by a template."""
        template = self.ec2.create_launch_template(
            LaunchTemplateName=name, LaunchTemplateData={"ImageId": ami}
        )["LaunchTemplate"]["LaunchTemplateId"]
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"},
            MinSize=0,
            MaxSize=2,
            DesiredCapacity=1,
            AvailabilityZones=[f"{REGION}a"],
        )
        return name

    def group_instances(self, name: str) -> list[Any]:
        (group,) = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"
        ]
        return list(group["Instances"])

    def activities(self, name: str) -> list[Any]:
        response = self.autoscaling.describe_scaling_activities(AutoScalingGroupName=name)
        return list(response["Activities"])


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch) -> Iterator[Accounts]:
    # Without moto's stock AMIs (a thousand per account and region, each with a snapshot):
    # faster, and every AMI here is one a test made
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        install_extensions(None)
        yield Accounts(
            _client(OWNER, "ec2"),
            _client(OWNER, "kms"),
            _client(CONSUMER, "ec2"),
            _client(CONSUMER, "kms"),
            _client(CONSUMER, "autoscaling"),
        )


def test_another_account_can_neither_see_nor_launch_an_ami_not_shared_with_it(
    accounts: Accounts,
) -> None:
    ami = accounts.bake()
    for call in (
        lambda: accounts.ec2.describe_images(ImageIds=[ami]),
        lambda: accounts.launch(ami),
    ):
        with pytest.raises(ClientError) as refused:
            call()
        error = refused.value.response["Error"]
        assert (error["Code"], error["Message"]) == (
            "InvalidAMIID.NotFound",
            f"The image id '[{ami}]' does not exist",
        )
    assert accounts.ec2.describe_instances()["Reservations"] == []


def test_an_auto_scaling_launch_from_an_ami_not_shared_fails_its_activity(
    accounts: Accounts,
) -> None:
    ami = accounts.bake()
    group = accounts.group_from(ami)
    assert accounts.group_instances(group) == []
    (activity,) = accounts.activities(group)
    failed = f"The AMI ID {ami} does not exist. Launching EC2 instance failed."
    assert (activity["StatusCode"], activity["StatusMessage"]) == ("Failed", failed)
    assert activity["Description"] == f"Launching a new EC2 instance.  Status Reason: {failed}"


def test_launch_permission_lets_another_account_see_and_launch_an_unencrypted_ami(
    accounts: Accounts,
) -> None:
    ami = accounts.bake()
    accounts.share(ami)
    (image,) = accounts.ec2.describe_images(ImageIds=[ami])["Images"]
    assert image["OwnerId"] == OWNER
    assert image.get("Tags", []) == []  # the tags A gave it are A's only
    for listed in ({"ExecutableUsers": ["self"]}, {"Owners": [OWNER]}):
        assert [i["ImageId"] for i in accounts.ec2.describe_images(**listed)["Images"]] == [ami]
    assert accounts.ec2.describe_images(Owners=["self"])["Images"] == []
    instance = accounts.launch(ami)
    assert (instance["ImageId"], instance["State"]["Name"]) == (ami, "running")
    assert len(accounts.group_instances(accounts.group_from(ami))) == 1


def test_a_key_policy_that_does_not_allow_the_account_fails_its_launches(
    accounts: Accounts,
) -> None:
    # Given A's AMI, shared with B, its snapshot encrypted with a key whose policy is
    # KMS's default one (A's own account only)
    ami = accounts.bake(key_policy(_allow(f"arn:aws:iam::{OWNER}:root", "kms:*")))
    accounts.share(ami)
    # Then B sees the AMI, but its instance terminates on launch
    accounts.ec2.describe_images(ImageIds=[ami])
    instance = accounts.launch(ami)
    assert (instance["State"]["Name"], instance["StateReason"]) == ("terminated", CLIENT_ERROR)
    # And B may not give its Auto Scaling role a grant on the key, so its Auto Scaling
    # group gets no instance, only a failed activity
    activity = _grant_refused_and_group_failed(accounts, ami)
    assert (activity["StatusCode"], activity["StatusMessage"]) == (
        "Failed",
        CLIENT_ERROR["Message"],
    )
    assert activity["Description"].startswith("Launching a new EC2 instance: i-")


def test_the_cross_account_key_policy_of_the_auto_scaling_guide_needs_a_grant_for_groups(
    accounts: Accounts,
) -> None:
    # Given the key policy statements of the Auto Scaling guide's Example 2 for B
    b_root = f"arn:aws:iam::{CONSUMER}:root"
    ami = accounts.bake(
        key_policy(
            _allow(f"arn:aws:iam::{OWNER}:root", "kms:*"),
            _allow(b_root, *USE),
            _allow(b_root, "kms:CreateGrant"),
        )
    )
    accounts.share(ami)
    # Then B's own principals launch from the AMI
    assert accounts.launch(ami)["State"]["Name"] == "running"
    # But its Auto Scaling role needs the grant B gives it: none yet, no instance
    first = accounts.group_from(ami)
    assert accounts.group_instances(first) == []
    accounts.grant_auto_scaling(ami)
    assert len(accounts.group_instances(accounts.group_from(ami, name="second"))) == 1


def test_the_key_policy_phoenix_synthesizes_lets_auto_scaling_launch_through_the_grant(
    accounts: Accounts, phoenix_key_policy: dict[str, Any]
) -> None:
    ami = accounts.bake(phoenix_key_policy)
    accounts.share(ami)
    # B may give its own Auto Scaling role a grant (Example 2), and no other grantee
    accounts.grant_auto_scaling(ami)
    with pytest.raises(ClientError) as refused:
        accounts.grant_auto_scaling(ami, grantee=f"arn:aws:iam::{CONSUMER}:role/other")
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    # And its Auto Scaling group launches from the AMI
    group = accounts.group_from(ami)
    assert len(accounts.group_instances(group)) == 1
    assert accounts.activities(group) == []
    # While a RunInstances of B's own fails: the grant EC2 needs for the volume is not
    # one for B's Auto Scaling role, the only grantee the policy allows
    instance = accounts.launch(ami)
    assert (instance["State"]["Name"], instance["StateReason"]) == ("terminated", CLIENT_ERROR)


def test_without_its_grant_statement_the_phoenix_key_policy_fails_group_launches(
    accounts: Accounts, phoenix_key_policy: dict[str, Any]
) -> None:
    ami = accounts.bake(_without(phoenix_key_policy, "SharedAmisGrantToAutoScaling"))
    accounts.share(ami)
    activity = _grant_refused_and_group_failed(accounts, ami)
    assert activity["StatusMessage"] == CLIENT_ERROR["Message"]


def _grant_refused_and_group_failed(accounts: Accounts, ami: str) -> dict[str, Any]:
    """B's grant for its Auto Scaling role is refused, and so its group launches nothing:
    the one failed activity."""
    with pytest.raises(ClientError) as refused:
        accounts.grant_auto_scaling(ami)
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    group = accounts.group_from(ami)
    assert accounts.group_instances(group) == []
    (activity,) = accounts.activities(group)
    return dict(activity)
