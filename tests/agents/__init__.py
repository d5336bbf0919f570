"""Scripted stand-in agents used by the tests."""
