"""Benchmarks print their results, not the handlers' logs: while the embedded AWS runs,
everything written to stdout and stderr (Powertools' JSON logs and metrics) and every log
record (moto's and the handlers') and every Python warning go to a file the benchmark
names at the end."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def logs_to_file(name: str) -> Iterator[Path]:
    """Send stdout, stderr and logging to `<tmp>/phoenix-<name>-*/handlers.log` while the
    block runs."""
    path = Path(tempfile.mkdtemp(prefix=f"phoenix-{name}-")) / "handlers.log"
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    with path.open("w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        to_file = logging.StreamHandler(log)
        root.handlers = [to_file]
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)  # Python warnings (Powertools' UserWarning) too
        try:
            yield path
        finally:
            logging.captureWarnings(False)
            root.handlers, root.level = handlers, level
