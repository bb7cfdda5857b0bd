"""GMM-supervector SVM (Campbell, Sturim & Reynolds 2006): one linear SVM per target speaker.

Inputs are supervectors already scaled as in the paper (MAP-adapted means times ``sqrt(w_c)/sigma_c``,
``spkrec extract-supervectors``), so the linear kernel ``<a, b>`` approximates the KL-divergence kernel.
Each speaker's SVM separates that speaker's enrolment supervectors (class +1) from the background
supervectors (class -1) with scikit-learn's libsvm ``SVC`` on a precomputed linear kernel: the
background Gram matrix is computed once for all speakers, then each SVM collapses to ``w = sum_i alpha_i
y_i x_i`` and the score is ``decision_function(x) = w . x + b`` (> 0 leans target).
"""
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.svm import SVC

from spkrec.backend.base import Persistable, check_vectors, encode_labels, rowdot_pairs, use_dense
from spkrec.errors import SpkrecError


class GSVSVM(Persistable, BaseEstimator):
    """One linear SVM per target speaker against a shared background set.

    C : SVM soft-margin cost.
    class_weight : ``"balanced"`` (default: each class weighs ``n_total / (2 n_class)``, so the few target
        supervectors count as much as the many background ones) or ``None`` (every vector weighs 1).
    Fitted: ``speakers_ (S,)`` sorted speaker ids, ``coef_ (S, dim)``, ``intercept_ (S,)``.
    """

    def __init__(self, C=1.0, class_weight="balanced"):
        self.C = C
        self.class_weight = class_weight

    def fit(self, X, y, background):
        """X: (n, dim) enrolment supervectors with speaker labels y (n,); background: (B, dim)."""
        X = check_vectors(X, "GSVSVM.fit targets")
        bg = check_vectors(background, "GSVSVM.fit background", dim=X.shape[1])
        codes, speakers = encode_labels(y, X.shape[0])
        G_bb = bg @ bg.T
        G_tb = X @ bg.T
        G_tt = X @ X.T
        coef = np.zeros((len(speakers), X.shape[1]))
        intercept = np.zeros(len(speakers))
        labels_bg = np.zeros(bg.shape[0], dtype=int)
        for s in range(len(speakers)):
            idx = np.flatnonzero(codes == s)
            K = np.block([[G_tt[np.ix_(idx, idx)], G_tb[idx]], [G_tb[idx].T, G_bb]])
            labels = np.concatenate([np.ones(idx.size, dtype=int), labels_bg])
            svm = SVC(kernel="precomputed", C=self.C, class_weight=self.class_weight).fit(K, labels)
            sv, alpha = svm.support_, svm.dual_coef_[0]   # classes_ = [0, 1]: positive decision -> target
            is_t = sv < idx.size
            coef[s] = alpha[is_t] @ X[idx[sv[is_t]]] + alpha[~is_t] @ bg[sv[~is_t] - idx.size]
            intercept[s] = svm.intercept_[0]
        self.speakers_, self.coef_, self.intercept_ = np.asarray(speakers).astype(str), coef, intercept
        return self

    def decision_function(self, X):
        """Scores of test supervectors X (n, dim) against every speaker: (n, S)."""
        self._check_fitted("coef_")
        return check_vectors(X, "GSVSVM test", dim=self.coef_.shape[1]) @ self.coef_.T + self.intercept_

    def score_pairs(self, test, pairs=None):
        """Scores (S, K) of every model against test (K, dim); (P,) with ``pairs=(model_idx, test_idx)``."""
        self._check_fitted("coef_")
        T = check_vectors(test, "GSVSVM test", dim=self.coef_.shape[1])
        if pairs is None:
            return self.coef_ @ T.T + self.intercept_[:, None]
        mi, ti = (np.asarray(p, dtype=np.int64) for p in pairs)
        if use_dense(len(self.coef_), len(T), len(mi)):
            return (self.coef_ @ T.T)[mi, ti] + self.intercept_[mi]
        return rowdot_pairs(self.coef_, T, mi, ti, block=256) + self.intercept_[mi]

    def speaker_index(self, speaker_ids, where="trials"):
        """Row of each speaker id in ``coef_``; raises SpkrecError for an unknown speaker."""
        lookup = {s: i for i, s in enumerate(self.speakers_)}
        missing = [s for s in speaker_ids if s not in lookup]
        if missing:
            raise SpkrecError(f"{where}: no SVM for speaker {missing[0]!r}; enrol it with train-svm")
        return np.array([lookup[s] for s in speaker_ids], dtype=np.int64)

    def _get_state(self):
        return {"speakers_": self.speakers_, "coef_": self.coef_, "intercept_": self.intercept_}, {}

    def _set_state(self, arrays, meta):
        self.speakers_, self.coef_ = arrays["speakers_"], arrays["coef_"]
        self.intercept_ = arrays["intercept_"]
