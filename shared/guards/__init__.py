"""One guard stack for input, retrieved context (safety) and output (postprocess).

``TextGuard`` is the small PII-only guard; ``GuardSuite`` runs the input or context checks of a
``GuardPolicy`` (PII, secrets, profanity, prompt injection, banned topics, length) and returns
typed findings and the text with numbered placeholders; ``OutputScanner`` runs the output checks
(PII, secrets, profanity, leakage) under the policy's ``output`` section. Both give ``GuardFinding``.
"""

from shared.guards.offline import prepare_imports

# Importing guardrails would otherwise try to download nltk's punkt (see offline.py).
prepare_imports()

from shared.guards.findings import GuardFinding, SuiteResult  # noqa: E402
from shared.guards.guard import ScanResult, Span, TextGuard  # noqa: E402
from shared.guards.guard_suite import GuardResources, GuardSuite, Placeholders, Stage  # noqa: E402
from shared.guards.output_scan import OutputScanner  # noqa: E402
from shared.guards.policy import Action, GuardPolicy, OutputPolicy, PolicySet  # noqa: E402

__all__ = [
    "Action",
    "GuardFinding",
    "GuardPolicy",
    "GuardResources",
    "GuardSuite",
    "OutputPolicy",
    "OutputScanner",
    "Placeholders",
    "PolicySet",
    "ScanResult",
    "Span",
    "Stage",
    "SuiteResult",
    "TextGuard",
]
