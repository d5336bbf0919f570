"""Discovery: outside systems whose reports become tasks without a human copying them over.

Each source is one module (``sentry`` today) with a ``discover`` entry point that the CLI
(``swarm discover sentry``) and the monitor's chores (``[sentry] discover_every``) call, and a ``check``
that ``swarm doctor`` calls. Nothing is imported here, so importing the package costs nothing.
"""
