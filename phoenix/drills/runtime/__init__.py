"""The rollback drills ' runtime (no aws_cdk)."""
