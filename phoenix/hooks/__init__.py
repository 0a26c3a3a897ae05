"""phoenix's example pre-traffic hook: a smoke test of the new instances (construct and
runtime/)."""
