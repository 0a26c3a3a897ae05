"""ReleaseOrchestrator: the release state machine (construct, definition, spec), its runtime
(runtime/: models, preflight, strategy, gate, trigger) and its Lambda handlers (handlers/)."""
