"""The five pipeline stages, each a separate service (``python -m services.<stage>``)."""
