"""The Python client SDK."""

from shared.client.sdk import LlmopsClient, PipelineErrorAnswer

__all__ = ["LlmopsClient", "PipelineErrorAnswer"]
