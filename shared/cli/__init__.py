"""The ``llmops`` command line."""
