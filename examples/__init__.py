"""Worked examples for people extending guardstream (not part of the worker package)."""
