"""The two errors a command turns into an exit code: here, not in the command line or the wiring, so any
module can raise them without importing either (and without an import cycle)."""


class UsageError(Exception):
    """The user asked for something that cannot be done as asked; exit 2 with the message."""


class OperationalError(Exception):
    """Something the user asked for failed (exit 1)."""
