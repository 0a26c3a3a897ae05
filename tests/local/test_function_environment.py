"""Each function's environment is its own, as each Lambda function is its own process:
a handler sees its variables over the process's, and no other thread sees them, while
it runs or after (a test's boto3 client made meanwhile used to see, or lose, them)."""

from __future__ import annotations

import os
import threading

from local.lambda_environments import function_environment


def test_a_handler_s_variables_are_seen_by_its_thread_only() -> None:
    inside: dict[str, object] = {}
    started, release = threading.Event(), threading.Event()

    def handler() -> None:
        with function_environment({"AWS_REGION": "eu-west-1", "PHOENIX_ONLY_HERE": "yes"}):
            inside["region"] = os.environ["AWS_REGION"]
            inside["listed"] = "PHOENIX_ONLY_HERE" in dict(os.environ.items())
            inside["home"] = os.environ.get("HOME")
            started.set()
            release.wait(5)

    worker = threading.Thread(target=handler)
    worker.start()
    assert started.wait(5)
    try:
        assert "PHOENIX_ONLY_HERE" not in os.environ
        assert "PHOENIX_ONLY_HERE" not in dict(os.environ.items())
    finally:
        release.set()
        worker.join(5)
    assert inside == {"region": "eu-west-1", "listed": True, "home": os.environ.get("HOME")}
    assert "PHOENIX_ONLY_HERE" not in os.environ


def test_a_handler_that_deletes_a_variable_deletes_it_for_itself() -> None:
    seen: list[bool] = []

    def handler() -> None:
        with function_environment({"PHOENIX_GONE": "1"}):
            del os.environ["PHOENIX_GONE"]
            seen.append("PHOENIX_GONE" in os.environ)

    worker = threading.Thread(target=handler)
    worker.start()
    worker.join(5)
    assert seen == [False]
