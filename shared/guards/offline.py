"""Keep the guard stack off the network: guardrails telemetry, the hub, tldextract's suffix list, model hubs.

``go_offline()`` is idempotent and called by every guard's ``warm_up``. What it sets
(documented in ``.env.example``):

- ``GUARDRAILS_RUN_SYNC=true``: validators run in the calling thread (no event loop of guardrails' own);
- ``guardrails.settings.settings.rc.enable_metrics = False`` (plus ``guard.configure(allow_metrics_collection=
  False)`` on every Guard): no OpenTelemetry exporter to the guardrails hub;
- ``TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS=""`` and a module-level ``TLDExtract`` without URLs: Presidio's email
  recognizer uses tldextract, which would otherwise fetch the public suffix list; the snapshot bundled in the
  package is used instead;
- ``HF_HUB_OFFLINE=1``, ``TRANSFORMERS_OFFLINE=1``: the embedder's model is a folder in an installed package;
- ``NLTK_DATA``: importing guardrails calls ``nltk.download("punkt")`` when nltk (a dependency of the hub's
  detect_pii) cannot find it. No validator here uses punkt, so an empty ``tokenizers/punkt`` folder under a
  cache directory is put first on nltk's path (``prepare_imports()``, run before guardrails is imported).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from pathlib import Path

__all__ = ["OFFLINE_ENV", "go_offline", "prepare_imports"]

OFFLINE_ENV = {
    "GUARDRAILS_RUN_SYNC": "true",
    "TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS": "",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}

_lock = threading.Lock()
_done = False


def prepare_imports() -> None:
    """Before guardrails or tldextract is imported: the variables, and a stub punkt so nltk never downloads."""
    for name, value in OFFLINE_ENV.items():
        os.environ.setdefault(name, value)
    stub = Path(tempfile.gettempdir()) / "llmops-nltk-data"
    (stub / "tokenizers" / "punkt").mkdir(parents=True, exist_ok=True)
    (stub / "tokenizers" / "punkt_tab").mkdir(parents=True, exist_ok=True)
    paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    if str(stub) not in paths:
        os.environ["NLTK_DATA"] = os.pathsep.join([*paths, str(stub)])
    nltk_data = sys.modules.get("nltk.data")
    if nltk_data is not None and str(stub) not in nltk_data.path:
        nltk_data.path.append(str(stub))


def go_offline() -> None:
    """Set the variables above (without overriding explicit ones) and patch the two libraries' globals."""
    global _done  # noqa: PLW0603 - a process-wide switch, set once
    with _lock:
        if _done:
            return
        prepare_imports()
        import tldextract.tldextract  # noqa: PLC0415 - only where the guards run
        from guardrails.settings import settings as guardrails_settings  # noqa: PLC0415

        guardrails_settings.rc.enable_metrics = False
        # The module-level extractor was built at import, maybe before the variable was set.
        tldextract.tldextract.TLD_EXTRACTOR = tldextract.tldextract.TLDExtract(
            suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
        )
        _done = True
