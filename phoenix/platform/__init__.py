"""What every component stands on: the environment key, network, observability, the Lambda
factory, roles and cdk-nag helpers."""
