from __future__ import annotations

import pytest

from services.postprocess.finisher import Finisher
from services.postprocess.output_checks import OutputChecker


@pytest.fixture(scope="session")
def checker() -> OutputChecker:
    """The real output checker (guardrails guard, stopgap detectors, packaged policy), built once."""
    checker = OutputChecker()
    checker.warm_up()
    return checker


@pytest.fixture(scope="session")
def finisher(checker: OutputChecker) -> Finisher:
    return Finisher(checker)
