"""Tests for the shared spaCy loader."""

from __future__ import annotations

import json
from pathlib import Path

from shared.text.nlp import NER_ONLY, load_spacy

DATA = Path(__file__).resolve().parents[2] / "data"


class TestLoadSpacy:
    def test_entities(self) -> None:
        """The bundled English model finds people and places offline."""
        doc = load_spacy()("Ada Lovelace lived in London.")
        assert {(e.text, e.label_) for e in doc.ents} >= {("Ada Lovelace", "PERSON"), ("London", "GPE")}

    def test_cached(self) -> None:
        """The same pipeline object is returned for the same options."""
        assert load_spacy(disable=("parser",)) is load_spacy(disable=("parser",))

    def test_ner_only_finds_the_same_entities(self) -> None:
        """Without the tagger, parser, lemmatizer and shared token vectors the NER finds exactly what it did."""
        texts = [
            json.loads(line)["input"]
            for line in (DATA / "preprocess" / "golden.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        texts += ["Did Ada Lovelace visit Paris in 1840?", "Apple opened a store on Fifth Avenue for $2 million."]
        full, lean = load_spacy(), load_spacy(disable=NER_ONLY)
        assert lean.pipe_names == ["ner"]
        for text in texts:
            assert [(e.text, e.label_, e.start_char) for e in lean(text).ents] == [
                (e.text, e.label_, e.start_char) for e in full(text).ents
            ], text
