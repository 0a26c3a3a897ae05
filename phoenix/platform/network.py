"""The environment's VPC in one region."""

from __future__ import annotations

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from phoenix.config.environment import NetworkConfig
from phoenix.platform.nag import VPC_DEFAULT_SECURITY_GROUP, skip_cdk_provider
from phoenix.platform.observability import log_retention


class Network(Construct):
    """The environment's VPC in one region, created here or, with `config.vpc_id`, imported.

    A created VPC has public subnets (load balancers, NAT) and private subnets
    (instances) over `config.availability_zones` zones, NAT gateways
    (`config.nat_gateways`), an S3 gateway endpoint, and a default security group
    stripped of all rules. An imported VPC is taken as it is, from its ids alone (no
    lookup at synthesis). Instances never get public addresses. Either way every flow is
    logged to a log group encrypted with `key`, kept `log_retention_days`.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: NetworkConfig,
        key: kms.IKey,
        log_retention_days: int,
    ) -> None:
        super().__init__(scope, id)
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=key,
            retention=log_retention(log_retention_days),
            removal_policy=RemovalPolicy.RETAIN,
        )
        destination = ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
        self.vpc: ec2.IVpc
        if config.vpc_id:
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=config.vpc_id,
                vpc_cidr_block=config.cidr,
                availability_zones=Stack.of(self).availability_zones,
                public_subnet_ids=config.public_subnet_ids,
                private_subnet_ids=config.private_subnet_ids,
            )
            ec2.FlowLog(
                self,
                "FlowLog",
                resource_type=ec2.FlowLogResourceType.from_vpc(self.vpc),
                destination=destination,
                traffic_type=ec2.FlowLogTrafficType.ALL,
            )
            return
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(config.cidr),
            max_azs=config.availability_zones,
            nat_gateways=config.nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC),
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                ),
            ],
            restrict_default_security_group=True,
            gateway_endpoints={
                "S3": ec2.GatewayVpcEndpointOptions(service=ec2.GatewayVpcEndpointAwsService.S3)
            },
            flow_logs={
                "All": ec2.FlowLogOptions(
                    destination=destination, traffic_type=ec2.FlowLogTrafficType.ALL
                )
            },
        )
        skip_cdk_provider(
            Stack.of(self),
            VPC_DEFAULT_SECURITY_GROUP,
            "CDK's provider that removes the rules of the VPC's default security group, "
            "calling only the EC2 API.",
        )
