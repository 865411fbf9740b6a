"""Gateway: the OpenAI-compatible HTTP API and the web playground in front of the pipeline."""
