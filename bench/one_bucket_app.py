"""The baseline for bench/synth.py: the smallest useful CDK app, one bucket in one stack.

Built-in CloudFormation validation is off here as it is in app.py, so the ratio
measures what phoenix's own constructs and cdk-nag cost, not a setting.
"""

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

app = cdk.App(builtin_cloud_formation_validation=False)
s3.Bucket(cdk.Stack(app, "OneBucket"), "Bucket")
app.synth()
