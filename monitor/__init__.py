"""The token-free monitor: observe every task, decide purely, act idempotently."""
