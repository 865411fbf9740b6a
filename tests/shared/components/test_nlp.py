"""Tests for the shared spaCy loader."""

from __future__ import annotations

from shared.components.nlp import load_spacy


class TestLoadSpacy:
    def test_entities(self) -> None:
        """The bundled English model finds people and places offline."""
        doc = load_spacy()("Ada Lovelace lived in London.")
        assert {(e.text, e.label_) for e in doc.ents} >= {("Ada Lovelace", "PERSON"), ("London", "GPE")}

    def test_cached(self) -> None:
        """The same pipeline object is returned for the same options."""
        assert load_spacy(disable=("parser",)) is load_spacy(disable=("parser",))
