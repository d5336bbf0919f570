"""Micro-benchmarks for swarm's hot paths (run each module as a script)."""
