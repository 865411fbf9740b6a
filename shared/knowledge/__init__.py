"""The knowledge base: loading documents, chunking them by tokens, and the Qdrant store they live in.

Shared by the grounding service (retrieval, and ingestion while the embedded stack runs)
and the ``llmops ingest`` command (ingestion when nothing else holds the store).
"""
