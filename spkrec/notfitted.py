"""The error of a model used before ``fit``/``load``.

Its own module because it subclasses scikit-learn's ``NotFittedError``: the numerical modules that
parallel workers import (``spkrec.gmm.core``, the statistics) stay free of the scikit-learn import
(about 1 s of CPU in every worker process).
"""
from sklearn.exceptions import NotFittedError

from spkrec.errors import SpkrecError


class NotFitted(SpkrecError, NotFittedError):
    """A model used before ``fit``/``load``: a :class:`SpkrecError` (one CLI line) and scikit-learn's
    ``NotFittedError``."""
