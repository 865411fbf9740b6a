"""Components more than one stage uses: model registry and store, tokenizer, guards."""
