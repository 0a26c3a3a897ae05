"""The docs stay true to the repository.

- docs/release-state-machine.mmd (and its copy in docs/architecture.md) is what
  docs/diagram.py draws from the release state machine synthesized in this session.
- No file cites a document the repository does not hold: every relative link in a
  Markdown file and every path of a Markdown file in any text file resolves to a file
  here, and no file names the planning documents or the shared folder that never were
  part of it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from docs.diagram import ARCHITECTURE, DIAGRAM, STACK, embedded, render
from tests.conftest import SynthesizedApp

REPO = Path(__file__).resolve().parent.parent
MD = ".md"
# Written in two parts so that this file does not name them itself.
FORBIDDEN = ("DESIGN" + MD, "STYLE" + MD, "../" + "shared/")
# npm's lock file: package names, versions and hashes; no prose to cite anything.
UNCHECKED = {"package-lock.json"}
LINK = re.compile(r"\[[^\]\n]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
# A path ending in .md (with its folders), not part of a URL or of a longer path.
MARKDOWN_PATH = re.compile(r"(?<![\w.:/-])((?:[\w.-]+/)*[\w-][\w.-]*\.md)(?![\w-])")
EXTERNAL = ("http://", "https://", "mailto:", "#")


def repository_files() -> list[str]:
    """Tracked files, and new ones not ignored, relative to the repository."""
    git = shutil.which("git")
    assert git, "git is needed to list the repository's files"
    listed = subprocess.run(
        [git, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (REPO / name).is_file()})


def text_of(name: str) -> str | None:
    """The file's text, or None for a binary or unchecked file."""
    if Path(name).name in UNCHECKED:
        return None
    data = (REPO / name).read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return None


def _resolves(target: str, folder: Path, known: set[str], *, from_root: bool) -> bool:
    starts = [folder, REPO] if from_root else [folder]
    for start in starts:
        path = (start / target).resolve()
        if not path.is_relative_to(REPO):
            continue
        relative = path.relative_to(REPO).as_posix()
        if relative in known or any(k.startswith(relative + "/") for k in known):
            return True
    return False


def citation_problems(name: str, text: str, known: set[str]) -> list[str]:
    """What `text` (the file `name`) cites that the repository does not hold."""
    folder = (REPO / name).parent
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        where = f"{name}:{number}"
        problems += [f"{where}: names {word}" for word in FORBIDDEN if word.lower() in line.lower()]
        # Links in Markdown only: in code, `calls[i](arg)` would read as one.
        for target in LINK.findall(line) if name.endswith(MD) else []:
            if target.startswith(EXTERNAL):
                continue
            path = target.split("#", 1)[0]
            if path and not _resolves(path, folder, known, from_root=False):
                problems.append(f"{where}: links to {target}, which is not in the repository")
        for path in MARKDOWN_PATH.findall(line):
            if any(word.lower() in path.lower() for word in FORBIDDEN):
                continue  # said above
            if not _resolves(path, folder, known, from_root=True):
                problems.append(f"{where}: cites {path}, which is not in the repository")
    return problems


def test_the_state_machine_diagram_is_the_synthesized_one(synthesized: SynthesizedApp) -> None:
    # Given the release state machine of the sandbox, as this session synthesized it
    diagram = render(synthesized.template(STACK))
    # Then the committed diagram and the copy in the architecture page are that one
    hint = "out of date: run .venv/bin/python -m docs.diagram"
    assert DIAGRAM.read_text() == diagram, f"{DIAGRAM.name} {hint}"
    page = ARCHITECTURE.read_text()
    assert page == embedded(page, diagram), f"{ARCHITECTURE.name} {hint}"


def test_the_diagram_draws_every_state_and_every_catch(synthesized: SynthesizedApp) -> None:
    diagram = render(synthesized.template(STACK))
    assert diagram == render(synthesized.template(STACK))
    for state in ("Preflight", "Prepare", "ShiftTraffic", "HealthGate", "Rollback", "Released"):
        assert f'"{state}' in diagram
    assert '-.-> |"catch States.ALL"| Rollback' in diagram
    assert '-.-> |"catch LockRefusedError"|' in diagram


def test_no_file_cites_a_document_that_is_not_in_the_repository() -> None:
    known = set(repository_files())
    problems = [
        problem
        for name in sorted(known)
        if (text := text_of(name)) is not None
        for problem in citation_problems(name, text, known)
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "text",
    [
        f"see DESIGN{MD} section 4",
        f"the house style (STYLE{MD})",
        "as in ../" + "shared/errors.py",
        f"[the runbook](docs/runbook{MD})",
        f"[the release](release{MD}#steps)",
        f"the rules are in docs/adr/0099-nothing{MD}",
    ],
)
def test_the_check_finds_a_missing_document(text: str) -> None:
    known = set(repository_files())
    assert citation_problems("README.md", text, known)
    assert citation_problems("phoenix/stage.py", text.replace("](", "] ("), known)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("README.md", f"see docs/release{MD} and [rollback](docs/rollback{MD}#retries)"),
        ("docs/release.md", f"[an ADR](adr/0004-controller-owned-state{MD}), rollback{MD}"),
        ("README.md", f"[AWS](https://docs.aws.amazon.com/x/y{MD}) and [top](#layout)"),
        ("phoenix/stage.py", f"every `*{MD}` file, the README{MD}"),
    ],
)
def test_the_check_accepts_documents_that_are_here(name: str, text: str) -> None:
    known = set(repository_files())
    assert not citation_problems(name, text, known)
