"""ReleaseOrchestrator: the release state machine (construct, definition, spec), its runtime
(runtime/: models, settings, preflight, strategy, gate, finalize, trigger, events, steps)
and its Lambda handlers (handlers/)."""
