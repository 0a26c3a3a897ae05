"""Fixtures shared by tests/local modules."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator

import pytest
from moto import mock_aws

from local import install_extensions
from tests.local.clock_world import HANDLER_MODULE, _probe_handler, probe


@pytest.fixture
def clock_aws() -> Iterator[None]:
    module = types.ModuleType(HANDLER_MODULE)
    module.lambda_handler = _probe_handler  # type: ignore[attr-defined]
    sys.modules[HANDLER_MODULE] = module
    probe.calls.clear()
    with mock_aws():
        install_extensions(None)
        yield
    del sys.modules[HANDLER_MODULE]
