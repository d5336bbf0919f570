"""Where an attempt runs: a tmux session on this machine (the default) or a container through the Docker
Engine API (Docker or Podman, local or on another host). Both answer the same :class:`Runtime` questions,
so observe, decide and act treat every attempt alike; the attempt records which runtime it was started in."""

from monitor.runtime.base import CONTAINER, RUNTIMES, TMUX, Runtime, RuntimeFailure, RuntimeUnavailable

__all__ = ["CONTAINER", "RUNTIMES", "TMUX", "Runtime", "RuntimeFailure", "RuntimeUnavailable"]
