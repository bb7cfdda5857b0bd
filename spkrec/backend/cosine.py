"""Cosine scoring: ``<e, t> / (||e|| ||t||)`` between model and test vectors."""
import numpy as np
from sklearn.base import BaseEstimator

from spkrec.backend.base import Persistable, check_vectors, rowdot_pairs, use_dense


def _unit_rows(X):
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.where(norms > 0, norms, 1.0)


def cosine_scores(enroll, test, pairs=None):
    """Cosine similarity of enrolment (M, dim) and test (K, dim) vectors.

    Returns the (M, K) matrix of all pairs, or with ``pairs=(enroll_index (P,), test_index (P,))`` the
    (P,) scores of that trial list. Zero vectors score 0.
    """
    e = _unit_rows(check_vectors(enroll, "cosine enroll"))
    t = _unit_rows(check_vectors(test, "cosine test", dim=e.shape[1]))
    if pairs is None:
        return e @ t.T
    ei, ti = (np.asarray(p, dtype=np.int64) for p in pairs)
    if use_dense(len(e), len(t), len(ei)):
        return (e @ t.T)[ei, ti]
    return rowdot_pairs(e, t, ei, ti)


class CosineScorer(Persistable, BaseEstimator):
    """Cosine scoring as a pipeline scorer (nothing to learn); a model vector is the mean of its enrolment
    vectors, so ``n_enroll`` is accepted and ignored."""

    def fit(self, X=None, y=None):
        return self

    def score_pairs(self, enroll, test, n_enroll=1, pairs=None):
        return cosine_scores(enroll, test, pairs)

    def _get_state(self):
        return {}, {}

    def _set_state(self, arrays, meta):
        pass
