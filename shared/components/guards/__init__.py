"""Guards used on both input (safety) and output (postprocess).

``TextGuard`` is the small PII-only guard; ``GuardSuite`` runs every check of a
``GuardPolicy`` (PII, secrets, profanity, prompt injection, banned topics, length) and
returns typed findings and the text with numbered placeholders.
"""

from shared.components.guards.offline import prepare_imports

# Importing guardrails would otherwise try to download nltk's punkt (see offline.py).
prepare_imports()

from shared.components.guards.guard import ScanResult, Span, TextGuard  # noqa: E402
from shared.components.guards.policy import Action, GuardPolicy, PolicySet  # noqa: E402
from shared.components.guards.suite import (  # noqa: E402
    GuardFinding,
    GuardResources,
    GuardSuite,
    Placeholders,
    Stage,
    SuiteResult,
)

__all__ = [
    "Action",
    "GuardFinding",
    "GuardPolicy",
    "GuardResources",
    "GuardSuite",
    "Placeholders",
    "PolicySet",
    "ScanResult",
    "Span",
    "Stage",
    "SuiteResult",
    "TextGuard",
]
