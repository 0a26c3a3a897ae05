"""The rehearsal's report: one self-contained HTML file to look at after `make demo`.

Per scenario, a chart per fleet it released: each slot's traffic weight (the top row)
and the traffic each AMI serves (the bottom row) over simulated time, with its alarms,
gates, rollbacks and failures marked; then the scenario's checks and timeline. The
charts are plotly's, with plotly.js inlined once, so the file opens anywhere offline.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from local.rehearsal import Moment, Rehearsal, Scenario
from local.rehearsal.samples import FleetKey, Sample, Sampler

# Simulated time shown as hh:mm from the rehearsal's start (a date axis on day one).
START = datetime(2026, 1, 1, tzinfo=UTC)
SLOT_COLOURS = {"blue": "#1f77b4", "green": "#2ca02c"}
MARKS = {  # kind -> (colour, symbol, line dash)
    "alarm": ("#d62728", "triangle-down", "solid"),
    "rollback": ("#ff7f0e", "x", "solid"),
    "failure": ("#9467bd", "x", "dash"),
    "gate": ("#7f7f7f", "circle", "dot"),
}
# The AMIs' colours: none of the slots' or the marks'.
AMI_COLOURS = ("#e377c2", "#17becf", "#bcbd22", "#8c564b", "#393b79", "#843c39", "#7b4173")
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em auto; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.6em; text-align: left;
  vertical-align: top; }
th { background: #f4f4f4; }
.ok { color: #2ca02c; } .failed { color: #d62728; font-weight: bold; }
section.scenario { border-top: 2px solid #444; margin-top: 2em; }
"""


def write(rehearsal: Rehearsal, sampler: Sampler, path: Path) -> Path:
    path.write_text(render(rehearsal, sampler), encoding="utf-8")
    return path


def render(rehearsal: Rehearsal, sampler: Sampler) -> str:
    colours = _AmiColours(rehearsal.versions)
    passed = all(holds for scenario in rehearsal.scenarios for _, holds in scenario.checks)
    body = [
        "<h1>phoenix rehearsal</h1>",
        f"<p>{'passed' if passed else 'FAILED'}: {len(rehearsal.scenarios)} scenarios in the "
        "embedded AWS. Times are simulated (hh:mm from the rehearsal's start); each "
        "chart's top row is each slot's traffic weight, its bottom row the traffic each "
        "AMI serves.</p>",
        _summary(rehearsal.scenarios),
    ]
    for number, scenario in enumerate(rehearsal.scenarios, 1):
        body.append(_scenario(number, scenario, rehearsal, sampler, colours))
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>phoenix rehearsal</title>"
        f"<style>{STYLE}</style><script>{get_plotlyjs()}</script></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


class _AmiColours:
    """One colour and one name per AMI, the same in every chart."""

    def __init__(self, versions: dict[str, str]) -> None:
        self.versions = versions
        self.given: dict[str, str] = {}

    def name(self, ami: str) -> str:
        return f"{self.versions.get(ami, 'first')} ({ami})"

    def colour(self, ami: str) -> str:
        palette = AMI_COLOURS
        return self.given.setdefault(ami, palette[len(self.given) % len(palette)])


def _summary(scenarios: list[Scenario]) -> str:
    rows = []
    for scenario in scenarios:
        path = " &rarr; ".join(html.escape(a.split(":")[1]) for a in scenario.critical_path)
        restore = (
            f"{scenario.time_to_rollback:.2f} s" if scenario.time_to_rollback is not None else "-"
        )
        rows.append(
            (
                html.escape(scenario.name),
                f"{scenario.real_seconds:.1f}",
                f"{scenario.simulated_minutes:.0f}",
                path or "-",
                restore,
            )
        )
    head = ("scenario", "real s", "sim. min", "rollback critical path", "alarm to traffic")
    return _table(head, rows, "summary")


def _scenario(
    number: int, scenario: Scenario, rehearsal: Rehearsal, sampler: Sampler, colours: _AmiColours
) -> str:
    moments = [m for m in rehearsal.moments if m.scenario == scenario.name]
    fleets = sampler.fleets.get(scenario.environment, [])
    marks = [(_fleet_of(m, scenario.environment, fleets), m) for m in moments]
    charted = sorted({key for key, _ in marks if key is not None}, key=lambda k: (k[1], k[2]))
    parts = [
        f'<section class="scenario" id="scenario-{number}">',
        f"<h2>{html.escape(scenario.name)}</h2>",
        f"<p>environment {html.escape(scenario.environment)}, "
        f"{_clock(scenario.began)} to {_clock(scenario.ended)} simulated, "
        f"{scenario.real_seconds:.1f} s real</p>",
    ]
    for key in charted:
        points = sampler.between(key, scenario.began, scenario.ended)
        fleet_marks = [m for k, m in marks if k == key and m.kind in MARKS]
        parts.append(_chart(number, key, points, fleet_marks, colours))
    checks = "".join(
        f'<li class="{"ok" if holds else "failed"}">{"ok" if holds else "FAILED"}: '
        f"{html.escape(what)}</li>"
        for what, holds in scenario.checks
    )
    parts.append(f'<ul class="checks">{checks}</ul>')
    rows = [
        (_clock(m.simulated), f"{m.real:.1f}", html.escape(m.what), html.escape(m.detail))
        for m in moments
    ]
    parts.append(_table(("sim. time", "real s", "what", "detail"), rows, "timeline"))
    parts.append("</section>")
    return "".join(parts)


def _fleet_of(moment: Moment, environment: str, fleets: list[tuple[str, str]]) -> FleetKey | None:
    """The fleet a moment is about: the one its event names, or for an alarm the fleet
    whose prefix (`phoenix-<env>-<fleet>-`) its name starts with, the longest first."""
    if moment.fleet:
        return (environment, moment.region, moment.fleet)
    if moment.kind != "alarm":
        return None
    named = [
        fleet
        for region, fleet in fleets
        if region == moment.region and moment.detail.startswith(f"phoenix-{environment}-{fleet}-")
    ]
    return (environment, moment.region, max(named, key=len)) if named else None


def _chart(
    number: int,
    key: FleetKey,
    points: list[Sample],
    marks: list[Moment],
    colours: _AmiColours,
) -> str:
    environment, region, fleet = key
    figure = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        subplot_titles=("traffic weight by slot (%)", "traffic by AMI (%)"),
    )
    times = [_time(p.simulated) for p in points]
    for slot in sorted({slot for p in points for slot in p.weights}):
        figure.add_trace(
            go.Scatter(
                x=times,
                y=[p.weights.get(slot, 0) for p in points],
                name=f"slot {slot}",
                legendgroup="slots",
                line={"shape": "hv", "color": SLOT_COLOURS.get(slot), "width": 3},
                hovertext=[_slot_text(slot, p, colours) for p in points],
                hoverinfo="x+text",
            ),
            row=1,
            col=1,
        )
    for ami in sorted({ami for p in points for ami in p.traffic}, key=colours.name):
        figure.add_trace(
            go.Scatter(
                x=times,
                y=[round(p.traffic.get(ami, 0.0), 1) for p in points],
                name=colours.name(ami),
                legendgroup="amis",
                line={"shape": "hv", "color": colours.colour(ami), "width": 3},
                hoverinfo="x+y+name",
            ),
            row=2,
            col=1,
        )
    for kind, (colour, symbol, dash) in MARKS.items():
        these = [m for m in marks if m.kind == kind]
        for moment in these:
            figure.add_vline(x=_time(moment.simulated), line={"color": colour, "dash": dash})
        if these:
            figure.add_trace(
                go.Scatter(
                    x=[_time(m.simulated) for m in these],
                    y=[108] * len(these),
                    mode="markers",
                    name=kind,
                    legendgroup="marks",
                    marker={"color": colour, "symbol": symbol, "size": 11},
                    hovertext=[html.escape(f"{m.what}: {m.detail}") for m in these],
                    hoverinfo="x+text",
                ),
                row=1,
                col=1,
            )
    figure.update_yaxes(range=[-5, 115], row=1, col=1)
    figure.update_yaxes(range=[-5, 105], row=2, col=1)
    figure.update_xaxes(tickformat="%H:%M", hoverformat="%H:%M")
    figure.update_layout(
        title=f"{fleet} ({environment}, {region})",
        height=460,
        margin={"l": 50, "r": 20, "t": 70, "b": 40},
        legend={"orientation": "h", "y": -0.12},
    )
    div_id = f"chart-{number}-{region}-{fleet}"
    chart = figure.to_html(
        full_html=False,
        include_plotlyjs=False,
        div_id=div_id,
        config={"displaylogo": False, "responsive": True},
    )
    return (
        f'<div class="chart" data-fleet="{html.escape(fleet)}" '
        f'data-region="{html.escape(region)}" data-marks="{len(marks)}">{chart}</div>'
    )


def _slot_text(slot: str, point: Sample, colours: _AmiColours) -> str:
    instances = point.instances.get(slot, {})
    on = ", ".join(f"{count} on {colours.name(ami)}" for ami, count in sorted(instances.items()))
    return f"slot {slot}: {point.weights.get(slot, 0)}% of traffic; {on or 'no instances'}"


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]], kind: str) -> str:
    header = "".join(f"<th>{column}</th>" for column in head)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{kind}"><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>'


def _time(simulated: float) -> datetime:
    return START + timedelta(seconds=simulated)


def _clock(simulated: float) -> str:
    minutes = int(simulated // 60)
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
