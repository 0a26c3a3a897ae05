"""The docs tooling: `python -m docs.diagram` draws the release state machine."""
