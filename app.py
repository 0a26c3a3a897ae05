#!/usr/bin/env python3
"""CDK entry point: one PhoenixStage per selected environment, checked by cdk-nag.

npx cdk synth                       # the default environment (sandbox)
npx cdk synth -c env=production     # another file in config/
npx cdk synth -c env=sandbox,production
npx cdk synth -c env=mine -c config_dir=../my-configs
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from phoenix.config.environment import (
    DEFAULT_ENVIRONMENT,
    ConfigError,
    EnvironmentConfig,
    load_environment,
)
from phoenix.stage import PhoenixStage

# The environments of this app, one YAML file each.
CONFIG_DIR = Path(__file__).resolve().parent / "config"
CDK_JSON = Path(__file__).resolve().parent / "cdk.json"


def new_app(outdir: str | None = None, *, context: dict[str, Any] | None = None) -> cdk.App:
    """A CDK app as phoenix synthesizes it (`context`: for a synthesis outside the CDK CLI,
    which otherwise passes cdk.json's; see cli_context).

    CDK's built-in CloudFormation validation is off: it only warns unless told
    otherwise, and measured here it tripled synthesis time. Every template is checked
    by cfn-lint instead (`make synth`, `make test`), and by cdk-nag at every synthesis.
    """
    return cdk.App(outdir=outdir, context=context, builtin_cloud_formation_validation=False)


def cli_context() -> dict[str, Any]:
    """The context the CDK CLI gives this app from cdk.json (feature flags included), so
    that a synthesis in tests makes the templates `cdk synth` makes."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context


def selected_environments(app: cdk.App) -> list[str]:
    value = app.node.try_get_context("env") or DEFAULT_ENVIRONMENT
    return [name.strip() for name in str(value).split(",") if name.strip()]


def config_dir(app: cdk.App) -> Path:
    value = app.node.try_get_context("config_dir")
    return Path(value) if value else CONFIG_DIR


def add_environments(
    app: cdk.App, configs: list[EnvironmentConfig], *, default_account: str | None = None
) -> cdk.App:
    """Add a PhoenixStage per environment and cdk-nag's AWS Solutions checks to `app`."""
    for config in configs:
        PhoenixStage(app, config.name, config=config, default_account=default_account)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    app = new_app()
    try:
        folder = config_dir(app)
        configs = [load_environment(name, folder) for name in selected_environments(app)]
    except ConfigError as err:
        sys.exit(f"phoenix: invalid config: {err}")
    add_environments(app, configs, default_account=os.environ.get("CDK_DEFAULT_ACCOUNT"))
    app.synth()


if __name__ == "__main__":
    main()
