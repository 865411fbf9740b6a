"""Text tools more than one stage uses: the MiniLM embedder, spaCy NLP, whitespace tidying, span overlaps."""
