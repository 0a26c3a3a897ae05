"""GoldenImagePipeline: EC2 Image Builder bakes the AMIs phoenix releases.

Built from aws-cdk-lib's stable `aws_imagebuilder` L1 resources (not the alpha package).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import (
    Acknowledgment,
    Aws,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_imagebuilder as imagebuilder
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import Construct

from phoenix.config.environment import ImagePipelineConfig
from phoenix.kernel.ledger import ROLLBACK_TARGET_TAG
from phoenix.kernel.names import image_name
from phoenix.kernel.severity import SEVERITIES, at_or_above
from phoenix.platform.nag import skip_checkov
from phoenix.platform.roles import managed_policy_role

COMPONENTS_DIR = Path(__file__).resolve().parent / "components"
# How long build logs are kept.
BUILD_LOG_DAYS = 90


def _severities_at_or_above(threshold: str) -> str:
    """The Inspector gate component's severities, most severe first."""
    return ",".join(s for s in reversed(SEVERITIES) if at_or_above(s, threshold))


def _log_access(bucket: s3.Bucket, access_logs: s3.IBucket, prefix: str) -> None:
    """S3 server access logs of `bucket`, into `access_logs` under `prefix`, delivered as the
    S3 user guide's bucket policy says (the logging service, for this bucket only): not
    CDK's `server_access_logs_bucket`, which without the
    `@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy` flag in the app grants by ACL, and
    the access-log bucket allows no ACLs (bucket owner enforced)."""
    resource = bucket.node.default_child
    assert isinstance(resource, s3.CfnBucket)
    resource.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
        destination_bucket_name=access_logs.bucket_name, log_file_prefix=prefix
    )
    access_logs.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
            actions=["s3:PutObject"],
            resources=[access_logs.arn_for_objects(f"{prefix}*")],
            conditions={
                "ArnLike": {"aws:SourceArn": bucket.bucket_arn},
                "StringEquals": {"aws:SourceAccount": Stack.of(bucket).account},
            },
        )
    )


class GoldenImagePipeline(Construct):
    """One Image Builder pipeline: components, recipe, build infrastructure, distribution,
    schedule and lifecycle.

    - Components are the versioned documents in `phoenix/images/components/` (hardening,
      CloudWatch agent, the application package, a test that fails the build when the
      service does not run, and an Inspector gate that fails it on findings at or above
      `config.fail_on_severity`); Inspector scanning is on.
    - The recipe starts from the public SSM parameter `config.parent_image_ssm_parameter`
      and encrypts the root volume with `key`; its version is `config.version`, so a
      change to the recipe ships as a new version.
    - Builds run in a private subnet with IMDSv2 only, a role that can do what the SSM
      agent, Image Builder and the Inspector gate need, logs in an encrypted bucket
      (whose own access is logged to `access_logs`, the stack's access-log bucket, when
      given), notifications to `topic`, and the instance terminated on failure.
    - Images are distributed to `regions` (the first is this one) with launch permission
      for `config.launch_permission_accounts`, and never into launch templates: Image
      Builder would make the new version their default and break rollback. Every
      region's copy gets the same AMI tags (`ami_tags`), never `phoenix:rollback-target`:
      a new image is in no fleet's use yet; the release controller of the copy's region
      tags it while a fleet there serves it or may roll back to it
      (docs/adr/0008-rollback-target-tags.md, docs/adr/0016-rollback-drills-and-retention.md).
    - The pipeline runs on `config.schedule` when its dependencies have updates, and a
      lifecycle policy keeps the last `config.keep_images` AMIs, never removing one
      tagged `phoenix:rollback-target` or launched in the last 30 days.
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        environment: str,
        config: ImagePipelineConfig,
        vpc: ec2.IVpc,
        key: kms.IKey,
        topic: sns.ITopic,
        regions: list[str],
        access_logs: s3.IBucket | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.name = image_name(environment, config.name)
        self.ami_tags = {"phoenix:pipeline": self.name}
        components = self._components(config)
        recipe = imagebuilder.CfnImageRecipe(
            self,
            "Recipe",
            name=self.name,
            version=config.version,
            parent_image=f"ssm:{config.parent_image_ssm_parameter}",
            components=components,
            block_device_mappings=[
                imagebuilder.CfnImageRecipe.InstanceBlockDeviceMappingProperty(
                    device_name="/dev/xvda",
                    ebs=imagebuilder.CfnImageRecipe.EbsInstanceBlockDeviceSpecificationProperty(
                        encrypted=True,
                        kms_key_id=key.key_arn,
                        volume_type="gp3",
                        volume_size=16,
                        delete_on_termination=True,
                    ),
                )
            ],
        )
        infrastructure = self._infrastructure(config, vpc, key, topic, access_logs)
        distribution = imagebuilder.CfnDistributionConfiguration(
            self,
            "Distribution",
            name=self.name,
            distributions=[self._distribution(environment, config, region) for region in regions],
        )
        self.pipeline = imagebuilder.CfnImagePipeline(
            self,
            "Pipeline",
            name=self.name,
            image_recipe_arn=recipe.attr_arn,
            infrastructure_configuration_arn=infrastructure.attr_arn,
            distribution_configuration_arn=distribution.attr_arn,
            enhanced_image_metadata_enabled=True,
            image_scanning_configuration=imagebuilder.CfnImagePipeline.ImageScanningConfigurationProperty(
                image_scanning_enabled=True
            ),
            image_tests_configuration=imagebuilder.CfnImagePipeline.ImageTestsConfigurationProperty(
                image_tests_enabled=True, timeout_minutes=60
            ),
            schedule=imagebuilder.CfnImagePipeline.ScheduleProperty(
                schedule_expression=config.schedule,
                pipeline_execution_start_condition="EXPRESSION_MATCH_AND_DEPENDENCY_UPDATES_AVAILABLE",
            ),
            status="ENABLED",
        )
        self._lifecycle(config)

    def _components(
        self, config: ImagePipelineConfig
    ) -> list[imagebuilder.CfnImageRecipe.ComponentConfigurationProperty]:
        parameters = {
            "application": {"Package": config.application_package, "Service": config.service},
            "service-test": {"Service": config.service},
            "inspector-gate": {"Severities": _severities_at_or_above(config.fail_on_severity)},
        }
        configured = []
        for document in sorted(COMPONENTS_DIR.glob("*.yaml")):
            component = imagebuilder.CfnComponent(
                self,
                f"Component-{document.stem}",
                name=f"{self.name}-{document.stem}",
                platform="Linux",
                version=config.version,
                data=document.read_text(encoding="utf-8"),
                description=f"phoenix {self.name}: {document.stem}",
            )
            configured.append(
                imagebuilder.CfnImageRecipe.ComponentConfigurationProperty(
                    component_arn=component.attr_arn,
                    parameters=[
                        imagebuilder.CfnImageRecipe.ComponentParameterProperty(
                            name=name, value=[value]
                        )
                        for name, value in parameters.get(document.stem, {}).items()
                    ]
                    or None,
                )
            )
        return configured

    def _infrastructure(
        self,
        config: ImagePipelineConfig,
        vpc: ec2.IVpc,
        key: kms.IKey,
        topic: sns.ITopic,
        access_logs: s3.IBucket | None,
    ) -> imagebuilder.CfnInfrastructureConfiguration:
        logs = s3.Bucket(
            self,
            "BuildLogs",
            encryption=s3.BucketEncryption.KMS,
            encryption_key=key,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(BUILD_LOG_DAYS))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        if access_logs is not None:
            _log_access(logs, access_logs, f"s3/{self.name}-build-logs/")
        else:
            reason = (
                "This pipeline was given no access-log bucket (access_logs) to log the "
                "build-log bucket's own access to."
            )
            Validations.of(logs).acknowledge(
                Acknowledgment(id="AwsSolutions::AwsSolutions-S1", reason=reason)
            )
            skip_checkov(logs, "CKV_AWS_18", reason)
        skip_checkov(
            logs,
            "CKV_AWS_21",
            "Not versioned: Image Builder writes each build's log objects once, under keys "
            f"of their own, and nothing rewrites them; they expire after {BUILD_LOG_DAYS} "
            "days, and versions would only keep deleted logs past that.",
        )
        why = "is AWS's maintained minimum for an Image Builder build instance (SSM agent, "
        why += "component download)."
        role = managed_policy_role(
            self,
            "BuildRole",
            service="ec2.amazonaws.com",
            description=f"phoenix {self.name}: Image Builder build and test instances",
            policies={
                "AmazonSSMManagedInstanceCore": f"AmazonSSMManagedInstanceCore {why}",
                "EC2InstanceProfileForImageBuilder": f"EC2InstanceProfileForImageBuilder {why}",
            },
        )
        role.add_to_policy(
            iam.PolicyStatement(actions=["inspector2:ListFindings"], resources=["*"])
        )
        # Image Builder writes its logs under the pipeline's prefix, object names unknown.
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["s3:PutObject"], resources=[logs.arn_for_objects(f"{self.name}/*")]
            )
        )
        key.grant(role, "kms:GenerateDataKey")
        bucket_id = Stack.of(self).get_logical_id(logs.node.default_child)  # type: ignore[arg-type]
        for finding, reason in (
            (
                "Resource::*",
                "inspector2:ListFindings supports no resource-level permissions; the "
                "Inspector gate filters by the build instance's own id.",
            ),
            (
                f"Resource::<{bucket_id}.Arn>/{self.name}/*",
                "Build logs are objects under the pipeline's prefix, named by Image Builder.",
            ),
        ):
            Validations.of(role).acknowledge(
                Acknowledgment(id=f"AwsSolutions::AwsSolutions-IAM5[{finding}]", reason=reason)
            )
        profile = iam.InstanceProfile(self, "BuildProfile", role=role)
        security_group = ec2.SecurityGroup(
            self,
            "BuildSecurityGroup",
            vpc=vpc,
            description=f"phoenix {self.name} builds: no inbound, outbound for packages",
            allow_all_outbound=True,
        )
        private = vpc.select_subnets(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)
        return imagebuilder.CfnInfrastructureConfiguration(
            self,
            "Infrastructure",
            name=self.name,
            instance_profile_name=profile.instance_profile_name,
            instance_types=config.build_instance_types,
            subnet_id=private.subnet_ids[0],
            security_group_ids=[security_group.security_group_id],
            instance_metadata_options=imagebuilder.CfnInfrastructureConfiguration.InstanceMetadataOptionsProperty(
                http_tokens="required", http_put_response_hop_limit=1
            ),
            logging=imagebuilder.CfnInfrastructureConfiguration.LoggingProperty(
                s3_logs=imagebuilder.CfnInfrastructureConfiguration.S3LogsProperty(
                    s3_bucket_name=logs.bucket_name, s3_key_prefix=self.name
                )
            ),
            sns_topic_arn=topic.topic_arn,
            terminate_instance_on_failure=True,
        )

    def _distribution(
        self, environment: str, config: ImagePipelineConfig, region: str | None
    ) -> imagebuilder.CfnDistributionConfiguration.DistributionProperty:
        here = Stack.of(self).region
        target = region or here
        # Copies are encrypted with the environment's key in each region (same alias).
        key = f"arn:{Aws.PARTITION}:kms:{target}:{Aws.ACCOUNT_ID}:alias/phoenix/{environment}"
        permission = (
            {"UserIds": config.launch_permission_accounts}
            if config.launch_permission_accounts
            else None
        )
        return imagebuilder.CfnDistributionConfiguration.DistributionProperty(
            region=target,
            ami_distribution_configuration={
                "Name": f"{self.name}-{{{{imagebuilder:buildDate}}}}",
                "AmiTags": dict(self.ami_tags),
                "KmsKeyId": key,
                **({"LaunchPermissionConfiguration": permission} if permission else {}),
            },
        )

    def _lifecycle(self, config: ImagePipelineConfig) -> None:
        role = managed_policy_role(
            self,
            "LifecycleRole",
            service="imagebuilder.amazonaws.com",
            description=f"phoenix {self.name}: Image Builder lifecycle policy",
            policies={
                "service-role/EC2ImageBuilderLifecycleExecutionPolicy": "The AWS-maintained "
                "policy Image Builder lifecycle rules run with."
            },
        )
        self.lifecycle = imagebuilder.CfnLifecyclePolicy(
            self,
            "Lifecycle",
            name=self.name,
            execution_role=role.role_arn,
            resource_type="AMI_IMAGE",
            policy_details=[
                imagebuilder.CfnLifecyclePolicy.PolicyDetailProperty(
                    action=imagebuilder.CfnLifecyclePolicy.ActionProperty(
                        type="DELETE",
                        include_resources=imagebuilder.CfnLifecyclePolicy.IncludeResourcesProperty(
                            amis=True, snapshots=True
                        ),
                    ),
                    filter=imagebuilder.CfnLifecyclePolicy.FilterProperty(
                        type="COUNT", value=config.keep_images
                    ),
                    exclusion_rules=imagebuilder.CfnLifecyclePolicy.ExclusionRulesProperty(
                        amis=imagebuilder.CfnLifecyclePolicy.AmiExclusionRulesProperty(
                            # Set by the release controller on each AMI (each region's
                            # copy apart) that a fleet may roll back to.
                            tag_map={ROLLBACK_TARGET_TAG: "true"},
                            last_launched=imagebuilder.CfnLifecyclePolicy.LastLaunchedProperty(
                                unit="DAYS", value=30
                            ),
                        )
                    ),
                )
            ],
            resource_selection=imagebuilder.CfnLifecyclePolicy.ResourceSelectionProperty(
                recipes=[
                    imagebuilder.CfnLifecyclePolicy.RecipeSelectionProperty(
                        name=self.name, semantic_version=config.version
                    )
                ]
            ),
        )
