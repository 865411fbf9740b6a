"""Preprocess: clean the prompt, count its tokens with the serving model's tokenizer, enforce the budget."""
