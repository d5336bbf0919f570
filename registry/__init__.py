"""The JSON task registry: the one source of truth shared by the orchestrator and the monitor."""
