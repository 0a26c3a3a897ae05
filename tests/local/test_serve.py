"""`python -m local serve`, `status` and `bake` as a user runs them, in another process;
and the `phoenix` command against it, in a shell that has only what serve says to export."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from local.__main__ import server_endpoint
from local.cloudformation import endpoint_client

REPO = Path(__file__).resolve().parents[2]
# The console script set-up installs (pyproject.toml [project.scripts]).
PHOENIX = Path(sys.executable).parent / "phoenix"


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


@dataclass
class Served:
    """The server, its port, what it printed until ready, and when it started."""

    process: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)
    started: float = 0.0

    def exports(self) -> dict[str, str]:
        """The variables it told the user to export (`  export NAME=VALUE`)."""
        lines = [line.strip().removeprefix("export ") for line in self.output]
        return dict(line.split("=", 1) for line in lines if line.startswith("AWS_"))


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    port = _free_port()
    started = time.monotonic()
    process = subprocess.Popen(
        # ten simulated minutes a second: a canary release takes seconds to watch
        [sys.executable, "-m", "local", "serve", "--port", str(port), "--time-scale", "600"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = Served(process, port, started=started)
    assert process.stdout is not None
    for line in process.stdout:
        server.output.append(line)
        if "ready" in line or time.monotonic() - started > 60:
            break
    ready = time.monotonic()
    # what it prints from now on (every handler's log line) is read, so it never blocks
    drain = threading.Thread(target=lambda: server.output.extend(process.stdout or []))
    drain.start()
    server.started = ready - started
    yield server
    if process.poll() is None:
        process.kill()
        process.wait(timeout=30)
    drain.join(timeout=30)


def test_serve_starts_within_30_seconds_and_answers(served: Served) -> None:
    port = served.port
    assert served.started < 30, "".join(served.output)
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
    machines = endpoint_client("stepfunctions", f"http://127.0.0.1:{port}").list_state_machines()[
        "stateMachines"
    ]
    assert [m["name"] for m in machines] == ["phoenix-sandbox-release"]
    # Bad input gets an AWS-shaped answer and the server keeps serving
    unknown = client.describe_auto_scaling_groups(AutoScalingGroupNames=["no-such-fleet"])
    assert unknown["AutoScalingGroups"] == []
    events = endpoint_client("events", f"http://127.0.0.1:{port}")
    malformed = events.put_events(
        Entries=[{"Source": "phoenix", "DetailType": "Release Requested", "Detail": "{not json"}]
    )
    assert malformed["FailedEntryCount"] == 1
    assert malformed["Entries"][0]["ErrorCode"] == "MalformedDetail"
    assert client.describe_auto_scaling_groups()["AutoScalingGroups"]


def _phoenix(served: Served, *arguments: str) -> subprocess.CompletedProcess[str]:
    """`.venv/bin/phoenix ...` in a shell that has only what serve told it to export."""
    environment = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(
        [str(PHOENIX), *arguments],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=environment | served.exports(),
        check=False,
    )


def _status(served: Served) -> dict[str, Any]:
    answer = _phoenix(served, "status", "--json")
    assert answer.returncode == 0, answer.stderr
    (web,) = json.loads(answer.stdout)
    return dict(web)


def _until(served: Served, holds: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    while not holds(web := _status(served)):
        assert time.monotonic() < deadline, f"{what}: {web}"
        time.sleep(1)
    return web


def test_the_phoenix_command_operates_the_served_environment(served: Served) -> None:
    # Given the server, and the failing image's release (the test before) rolled back:
    # nothing succeeded yet, so there is nothing to roll back
    _until(served, lambda web: web["in_flight"] is None, "the failing release never ended")
    nothing = _phoenix(served, "rollback", "web", "--reason", "test")
    assert (nothing.returncode, nothing.stdout) == (2, "")
    assert nothing.stderr == (
        "phoenix: nothing to roll back on web: no successful release to roll back\n"
    )

    # When a healthy image is baked, the phoenix command follows its release to the end
    before = _status(served)["last_release"]
    _cli("bake", "--version", "2.0.0", "--port", str(served.port))
    web = _until(
        served, lambda web: bool(web["in_flight"]) or web["last_release"] != before, "no release"
    )
    release = web["in_flight"]["release"] if web["in_flight"] else web["last_release"]
    watched = _phoenix(served, "watch", release, "--interval", "1")
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert watched.stdout.strip().splitlines()[-1] == f"{release}: succeeded"

    # Then status shows what serves, history has it first with its steps, a rollback
    # is requested by the caller, and bad input is refused with one line
    table = _phoenix(served, "status")
    assert table.returncode == 0
    assert "canary" in table.stdout
    web = _status(served)
    assert (web["last_release"], web["last_outcome"]) == (release, "succeeded")
    serving = {ami for slot in web["slots"].values() if slot["weight"] for ami in slot["amis"]}
    assert serving == {web["pointer"]}
    history = _phoenix(served, "history", "web", "--json")
    assert history.returncode == 0, history.stderr
    newest, previous = json.loads(history.stdout)[:2]
    assert (newest["release"], newest["outcome"]) == (release, "succeeded")
    assert previous["outcome"] == "rolled back"  # the failing image's
    assert [s["step"] for s in newest["steps"]][-1] == "pointer moved"
    assert release in _phoenix(served, "history", "web").stdout
    rolled = _phoenix(served, "rollback", "web", "--reason", "test")
    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.strip() == f"rollback of release {release} requested on web"
    # (ten simulated minutes a second: the 30-minute window is over, so the rollback is a
    # release of the AMI before, named after the release it rolls back)
    back = f"rollback-{release}"
    web = _until(
        served,
        lambda web: (web["last_release"], web["last_outcome"]) == (back, "succeeded"),
        "not rolled back",
    )
    rows = json.loads(_phoenix(served, "history", "web", "--json").stdout)
    (row, *_) = rows
    assert row["release"] == back
    # the fleet is back on the AMI that served before the release rolled back (status
    # reads the ledger before the pointer, which a release writes before it closes)
    assert web["pointer"] == row["to_ami"] == newest["from_ami"], json.dumps(rows, indent=1)
    assert newest["from_ami"] != newest["to_ami"]
    assert row["trigger"].startswith(f"rollback of {release}: requested by arn:aws:")
    unknown = _phoenix(served, "history", "nope")
    assert (unknown.returncode, unknown.stderr) == (
        2, "phoenix: no fleet 'nope' in sandbox (fleets: web)\n")  # fmt: skip


def test_serve_stops_on_ctrl_c(served: Served) -> None:
    served.process.send_signal(signal.SIGINT)
    served.process.wait(timeout=30)
    time.sleep(0.5)
    assert served.process.returncode == 0
    assert "phoenix: stopped" in "".join(served.output)
    assert os.environ.get("AWS_ENDPOINT_URL") is None  # the tests' own process untouched


def test_status_and_bake_take_port_then_aws_endpoint_url_then_4566(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    assert server_endpoint(None) == "http://127.0.0.1:4566"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://localhost:4000")
    assert server_endpoint(None) == "http://localhost:4000"
    assert server_endpoint(5000) == "http://127.0.0.1:5000"  # the option wins
