"""A warm preprocessor shared by the service tests of this folder (the models load once)."""

from pathlib import Path

import pytest

from services.preprocess.preprocessor import Preprocessor
from services.preprocess.settings import PreprocessSettings
from services.preprocess.stage import build_preprocessor


@pytest.fixture(scope="session")
def warm_pre(models_dir: Path) -> Preprocessor:
    """The preprocessor the service builds from default settings, warmed up."""
    p = build_preprocessor(PreprocessSettings())
    p.warm_up()
    return p
