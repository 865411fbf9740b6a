"""Postprocess: polish, cite and check the answer (and streamed chunks), deliver it on the reply topic."""

# The shared guards first: they keep guardrails' import from trying to download nltk data (offline.py).
import shared.guards  # noqa: F401
