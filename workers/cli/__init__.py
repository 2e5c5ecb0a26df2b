"""The ``guardstream`` command line: parses, sets up, dispatches; no logic of its own."""
