"""`python -m local serve`, `status` and `bake` as a user runs them, in another process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from local.__main__ import server_endpoint
from local.cloudformation import endpoint_client

REPO = Path(__file__).resolve().parents[2]


def _cli(*arguments: str) -> str:
    """Run `python -m local ...` as a user would; its standard output."""
    return subprocess.run(
        [sys.executable, "-m", "local", *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serve_starts_within_30_seconds_answers_and_stops_on_ctrl_c() -> None:
    port = _free_port()
    started = time.monotonic()
    server = subprocess.Popen(
        [sys.executable, "-m", "local", "serve", "--port", str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        output = []
        for line in server.stdout:
            output.append(line)
            if "ready" in line or time.monotonic() - started > 60:
                break
        assert time.monotonic() - started < 30, "".join(output)
        client = endpoint_client("autoscaling", f"http://127.0.0.1:{port}")
        names = {
            g["AutoScalingGroupName"]
            for g in client.describe_auto_scaling_groups()["AutoScalingGroups"]
        }
        assert names == {"phoenix-sandbox-web-blue", "phoenix-sandbox-web-green"}
        status = _cli("status", "--port", str(port))
        assert "fleet web: http://" in status
        assert "alarms in ALARM: none" in status
        assert "phoenix-sandbox-web-blue: min 2 desired 2 max 4" in status
        assert "weight 100" in status
        baked = _cli("bake", "--health", "failing", "--port", str(port))
        assert "image/phoenix-sandbox-golden/1.0.0/1 -> ami-" in baked
        assert "(failing); AVAILABLE event sent" in baked
        machines = endpoint_client(
            "stepfunctions", f"http://127.0.0.1:{port}"
        ).list_state_machines()["stateMachines"]
        assert [m["name"] for m in machines] == ["phoenix-sandbox-release"]
        # Bad input gets an AWS-shaped answer and the server keeps serving
        unknown = client.describe_auto_scaling_groups(AutoScalingGroupNames=["no-such-fleet"])
        assert unknown["AutoScalingGroups"] == []
        events = endpoint_client("events", f"http://127.0.0.1:{port}")
        malformed = events.put_events(
            Entries=[
                {"Source": "phoenix", "DetailType": "Release Requested", "Detail": "{not json"}
            ]
        )
        assert malformed["FailedEntryCount"] == 1
        assert malformed["Entries"][0]["ErrorCode"] == "MalformedDetail"
        assert client.describe_auto_scaling_groups()["AutoScalingGroups"]
    finally:
        server.send_signal(signal.SIGINT)
        remaining, _ = server.communicate(timeout=30)
    assert server.returncode == 0
    assert "phoenix: stopped" in remaining
    assert os.environ.get("AWS_ENDPOINT_URL") is None  # the tests' own process untouched


def test_status_and_bake_take_port_then_aws_endpoint_url_then_4566(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert server_endpoint(None) == "http://127.0.0.1:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4000")
    assert server_endpoint(None) == "http://localhost:4000"
    assert server_endpoint(5000) == "http://127.0.0.1:5000"  # the option wins
