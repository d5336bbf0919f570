"""Adapters to the outside world (processes, tmux, git, forges, notifiers), one small module each."""
