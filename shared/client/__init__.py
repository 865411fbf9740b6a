"""The Python client SDK."""

from shared.client.sdk import BROKER_ERRORS, LlmopsClient, PipelineErrorAnswer

__all__ = ["BROKER_ERRORS", "LlmopsClient", "PipelineErrorAnswer"]
