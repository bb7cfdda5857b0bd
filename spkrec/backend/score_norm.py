"""Score normalisation with a cohort: Z-norm, T-norm, symmetric S-norm and adaptive S-norm.

Raw scores come either as a (M, K) matrix (models x test vectors) or as a (P,) trial list with
``enroll_index``/``test_index`` (P,) into the cohort matrices. Cohort matrices hold one row per model
(``enroll_cohort (M, C)``: each model scored against the cohort) and one row per test vector
(``test_cohort (K, C')``: each test vector scored against the cohort). Statistics are the mean and the
population standard deviation (ddof 0) of a row, or of its ``top_n`` highest scores for adaptive S-norm
(Matejka et al. 2017, "AS-norm1": each side keeps the cohort members most similar to it).
"""
import numpy as np

from spkrec.errors import SpkrecError

STD_FLOOR = 1e-10


def cohort_stats(cohort_scores, top_n=None):
    """Mean and standard deviation of each row (or of its ``top_n`` largest entries): two (rows,) arrays."""
    S = np.asarray(cohort_scores, dtype=np.float64)
    if S.ndim != 2 or S.shape[1] == 0:
        raise SpkrecError(f"cohort scores: expected a (n, cohort) matrix with a non-empty cohort, "
                          f"got {S.shape}; "
                          "score every model and test vector against the cohort")
    if top_n is not None:
        top_n = int(top_n)
        if top_n < 1:
            raise SpkrecError(f"top_n={top_n}; use a positive cohort size")
        if top_n < S.shape[1]:
            S = np.partition(S, S.shape[1] - top_n, axis=1)[:, S.shape[1] - top_n:]
    return S.mean(axis=1), np.maximum(S.std(axis=1), STD_FLOOR)


def _normalise(scores, mu, sd, index, axis):
    scores = np.asarray(scores, dtype=np.float64)
    if index is None:
        if scores.ndim != 2 or scores.shape[axis] != mu.size:
            raise SpkrecError(f"scores: shape {scores.shape} does not match {mu.size} cohort rows; "
                              "give a (models, tests) matrix or trial indices")
        shape = (-1, 1) if axis == 0 else (1, -1)
        return (scores - mu.reshape(shape)) / sd.reshape(shape)
    index = np.asarray(index, dtype=np.int64)
    if index.shape != scores.shape:
        raise SpkrecError("scores: trial indices and scores differ in length; give one index per trial")
    return (scores - mu[index]) / sd[index]


def znorm(scores, enroll_cohort, enroll_index=None):
    """Z-norm: ``(s - mu_e) / sd_e`` with the model's scores against the cohort."""
    mu, sd = cohort_stats(enroll_cohort)
    return _normalise(scores, mu, sd, enroll_index, axis=0)


def tnorm(scores, test_cohort, test_index=None):
    """T-norm: ``(s - mu_t) / sd_t`` with the test vector's scores against the cohort."""
    mu, sd = cohort_stats(test_cohort)
    return _normalise(scores, mu, sd, test_index, axis=1)


def snorm(scores, enroll_cohort, test_cohort, enroll_index=None, test_index=None):
    """Symmetric S-norm: the average of Z-norm and T-norm."""
    return 0.5 * (znorm(scores, enroll_cohort, enroll_index) + tnorm(scores, test_cohort, test_index))


def adaptive_snorm(scores, enroll_cohort, test_cohort, enroll_index=None, test_index=None, top_n=200):
    """Adaptive S-norm: S-norm with each side's statistics from its ``top_n`` highest cohort scores."""
    mu_e, sd_e = cohort_stats(enroll_cohort, top_n)
    mu_t, sd_t = cohort_stats(test_cohort, top_n)
    return 0.5 * (_normalise(scores, mu_e, sd_e, enroll_index, axis=0)
                  + _normalise(scores, mu_t, sd_t, test_index, axis=1))


METHODS = {"z": znorm, "t": tnorm, "s": snorm, "as": adaptive_snorm}
"""The normalisations by name (``score-norm --method``)."""
COHORT_SIDES = {"z": ("enroll",), "t": ("test",), "s": ("enroll", "test"), "as": ("enroll", "test")}
"""Which cohort matrices each method uses."""


def normalise(method, scores, enroll_cohort=None, test_cohort=None, enroll_index=None, test_index=None, top_n=200):
    """Normalise ``scores`` by the method named ``method`` (a key of :data:`METHODS`); the cohort
    matrices a method does not use (:data:`COHORT_SIDES`) may be None; ``top_n`` is for ``"as"`` only."""
    if method not in METHODS:
        raise SpkrecError(f"score normalisation {method!r}: unknown; use one of {', '.join(METHODS)}")
    enroll = (enroll_cohort, enroll_index)
    test = (test_cohort, test_index)
    if method == "z":
        return znorm(scores, *enroll)
    if method == "t":
        return tnorm(scores, *test)
    extra = {"top_n": top_n} if method == "as" else {}
    return METHODS[method](scores, enroll_cohort, test_cohort, enroll_index, test_index, **extra)
