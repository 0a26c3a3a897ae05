"""What people read (rich); `--json` prints the same rows as JSON instead."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def as_json(console: Console, rows: Any) -> None:
    console.print_json(json.dumps(rows, default=str))


def _amis(amis: dict[str, Any]) -> str:
    return ", ".join(f"{ami} x{int(count)}" for ami, count in sorted(amis.items())) or "-"


def status_table(environment: str, rows: list[dict[str, Any]]) -> Table:
    table = Table(title=f"phoenix {environment}: fleets", show_lines=True)
    for column in ("fleet", "strategy", "pointer", "serving (weight: AMIs)", "release", "last"):
        table.add_column(column, overflow="fold")
    for row in rows:
        serving = "\n".join(
            f"{slot} {int(s['weight'])}%: {_amis(s['amis'])}"
            for slot, s in row["slots"].items()
            if s["weight"] or s["amis"]
        )
        flight = row["in_flight"]
        release = f"{flight['release']}\n{flight['step'] or 'starting'}" if flight else "-"
        if row["awaiting_approval"]:
            release += "\nawaits approval"
        if row["paused"]:
            release += f"\nPAUSED: {row['paused']}"
        if row.get("drill"):
            release = f"rollback drill {row['drill']['id']}\n{row['drill']['ami']}"
        last = f"{row['last_outcome']}\n{row['last_release']}" if row["last_release"] else "-"
        if row.get("last_drill"):
            drilled = row["last_drill"]
            last += f"\ndrill {drilled['outcome']} {drilled['at']}"
            last += f": {drilled['reason']}" if drilled["reason"] else ""
        table.add_row(
            row["fleet"], row["strategy"], row["pointer"] or "-", serving or "-", release, last
        )
    return table


OUTCOME_STYLE = {"succeeded": "green", "rolled back": "red", "failed": "red"}


def history_text(fleet: str, rows: list[dict[str, Any]]) -> Text:
    """Each release as a block, newest first (as `git log` shows commits): its id,
    outcome and duration; when and why it started; from -> to; then each step."""
    text = Text()
    if not rows:
        text.append(f"{fleet}: no releases\n")
    for row in rows:
        took = f"  {_duration(row['seconds'])}" if row["seconds"] is not None else ""
        text.append(f"{row['release']}  ", style="bold")
        text.append(str(row["outcome"]), style=OUTCOME_STYLE.get(str(row["outcome"]), "yellow"))
        text.append(f"{took}\n")
        text.append(f"  {row['started_at']}  {row['strategy']}  {row['trigger']}\n")
        text.append(f"  {row['from_ami'] or '?'} -> {row['to_ami']}\n")
        if row["reason"]:
            text.append(f"  reason: {row['reason']}\n")
        for step in row["steps"]:
            text.append(f"    {step_line(step)}\n")
        text.append("\n")
    return text


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def step_line(step: dict[str, Any]) -> str:
    """`HH:MM:SS step (traffic%) outcome score`."""
    at = str(step.get("at", ""))[11:19]
    traffic = f" ({int(step['traffic'])}%)" if "traffic" in step else ""
    judged = f" {step['outcome']} {step['score']:g}" if "score" in step else ""
    said = f" by {step['by']}: {step['reason']}" if "by" in step else ""
    return f"{at} {step['step']}{traffic}{judged}{said}"
