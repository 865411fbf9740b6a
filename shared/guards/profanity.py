"""alt-profanity-check's model, evaluated directly: the same probabilities at a fraction of the cost.

The package's ``predict_prob`` runs a TF-IDF vectorizer and a ``CalibratedClassifierCV`` of five
linear SVMs with sigmoid calibration. The arithmetic is tiny (a sparse dot product per SVM), but
scikit-learn validates its input at every step: about 3.7 of the safety stage's 8 ms per prompt
went there (cProfile, 2026-12-01). ``ProfanityModel`` keeps the fitted vectorizer and reads the
SVMs' weights and the calibrators' sigmoid parameters once, then computes

    p = mean_k expit(-(a_k * (x · w_k + c_k) + b_k))

which is what ``CalibratedClassifierCV.predict_proba`` does for a binary sigmoid model (a test
checks both agree). A model of another shape is evaluated by the package itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import expit

__all__ = ["ProfanityModel", "profanity_model"]


class ProfanityModel:
    """Profanity probabilities of texts (0..1), as ``profanity_check.predict_prob`` gives them.

    Example:
        >>> ProfanityModel.from_package().predict_prob(["you are a very kind person"])[0] < 0.5
        True

    """

    def __init__(self, vectorizer: Any, model: Any) -> None:
        self.vectorizer = vectorizer
        self.model = model
        self.direct = _is_binary_sigmoid(model)
        if self.direct:
            calibrated = model.calibrated_classifiers_
            #: (features, k): one column of SVM weights per calibrated classifier.
            self.weights = np.stack([np.asarray(c.estimator.coef_, dtype=np.float64).ravel() for c in calibrated], 1)
            self.intercepts = np.array([float(np.ravel(c.estimator.intercept_)[0]) for c in calibrated])
            self.a = np.array([float(c.calibrators[0].a_) for c in calibrated])
            self.b = np.array([float(c.calibrators[0].b_) for c in calibrated])

    @classmethod
    def from_package(cls) -> ProfanityModel:
        """The vectorizer and model alt-profanity-check ships (loaded once by the package)."""
        from profanity_check import profanity_check  # noqa: PLC0415 - loads the joblib files

        return cls(profanity_check.vectorizer, profanity_check.model)

    def predict_prob(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """The probability that each text is offensive."""
        features = self.vectorizer.transform(list(texts))
        if not self.direct:
            return np.asarray(self.model.predict_proba(features)[:, 1], dtype=np.float64)
        decisions = features @ self.weights + self.intercepts
        return np.asarray(expit(-(self.a * decisions + self.b)).mean(axis=1), dtype=np.float64)


def _is_binary_sigmoid(model: Any) -> bool:
    """A fitted ``CalibratedClassifierCV`` of linear models with one sigmoid calibrator each, classes 0 and 1."""
    calibrated = getattr(model, "calibrated_classifiers_", None)
    if getattr(model, "method", None) != "sigmoid" or not calibrated:
        return False
    for c in calibrated:
        classes = getattr(c, "classes", None)
        if classes is None or list(classes) != [0, 1] or list(getattr(c.estimator, "classes_", [])) != [0, 1]:
            return False
        if len(c.calibrators) != 1 or not hasattr(c.calibrators[0], "a_") or not hasattr(c.estimator, "coef_"):
            return False
    return True


@functools.cache
def profanity_model() -> ProfanityModel:
    """The package's model, read once per process."""
    return ProfanityModel.from_package()
