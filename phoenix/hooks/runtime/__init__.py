"""The example hook's function: a smoke test by Run Command on each new instance."""
