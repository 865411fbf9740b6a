"""Named entities of the prompt (people, places, organizations, dates...) with spaCy."""

from __future__ import annotations

from typing import Any

from shared.contracts.envelope import Entity
from shared.text.nlp import NER_ONLY, load_spacy

__all__ = ["ENTITY_LABELS", "EntityExtractor"]

#: spaCy labels worth recording and boosting retrieval with (numbers, percents, money... are not).
ENTITY_LABELS = frozenset(
    {"PERSON", "NORP", "FAC", "ORG", "GPE", "LOC", "PRODUCT", "EVENT", "WORK_OF_ART", "LAW", "LANGUAGE", "DATE"}
)


class EntityExtractor:
    """spaCy's English NER, loaded once.

    Example:
        >>> extractor = EntityExtractor()
        >>> extractor.warm_up()
        >>> [(e.text, e.label) for e in extractor.extract("Did Ada Lovelace visit Paris in 1840?")]
        [('Ada Lovelace', 'PERSON'), ('Paris', 'GPE'), ('1840', 'DATE')]

    """

    def __init__(self, *, max_chars: int = 5000) -> None:
        self.max_chars = max_chars
        self._nlp: Any | None = None

    def warm_up(self) -> None:
        """Load the pipeline (about a second): the NER alone, only entities are read."""
        if self._nlp is None:
            self._nlp = load_spacy(disable=NER_ONLY)

    def extract(self, text: str) -> list[Entity]:
        """The entities in (the first ``max_chars`` of) ``text``, in order."""
        if self._nlp is None:
            self.warm_up()
        assert self._nlp is not None  # noqa: S101 - set by warm_up
        doc = self._nlp(text[: self.max_chars])
        return [
            Entity(text=e.text, label=e.label_, start=e.start_char, end=e.end_char)
            for e in doc.ents
            if e.label_ in ENTITY_LABELS
        ]
