"""Probabilistic LDA: the two-covariance model (Kaldi) and simplified PLDA (Prince & Elder 2007).

Both are Gaussian models of a vector ``x = mean + s + e`` with a speaker part ``s ~ N(0, B)`` shared by all
vectors of a speaker and a session part ``e ~ N(0, W)``: the two-covariance model estimates full ``B``
(``between_``) and ``W`` (``within_``); simplified PLDA constrains ``B = V V^T`` of rank
``n_speaker_factors``. Scoring is common: ``transform_`` (Kaldi's simultaneous diagonalisation) maps
``x - mean_`` to a space where ``W = I`` and ``B = diag(psi_)``, where the exact verification
log-likelihood ratio of ``n`` enrolment vectors with mean ``e`` against a test vector ``t`` is, per dimension
(Ioffe 2006),

    log N(t | n psi / (n psi + 1) e, 1 + psi / (n psi + 1)) - log N(t | 0, 1 + psi),

which equals ``log p(e_1..e_n, t | same speaker) - log p(e_1..e_n) - log p(t)`` (the mean of the
enrolment vectors with its count is a sufficient statistic of the speaker variable's posterior).
"""
import logging

import numpy as np
import scipy.linalg
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from spkrec.backend.base import ClassStats, Persistable, check_vectors, rowdot_pairs, sym, use_dense
from spkrec.errors import SpkrecError
from spkrec.gmm.core import LOG_2PI

log = logging.getLogger("spkrec")


def _inv_logdet(A, what):
    """Inverse and log-determinant of a symmetric positive-definite matrix."""
    try:
        L = np.linalg.cholesky(A)
    except np.linalg.LinAlgError:
        raise SpkrecError(f"PLDA: the {what} covariance is not positive definite; reduce the dimension "
                          "(LDA) below the number of training vectors/speakers") from None
    Linv = scipy.linalg.solve_triangular(L, np.eye(A.shape[0]), lower=True)
    return Linv.T @ Linv, 2.0 * np.log(np.diag(L)).sum()


def _converged(history, tol):
    """True when the last EM iteration raised the objective by less than ``tol`` (``None``: never)."""
    return tol is not None and len(history) >= 2 and history[-1] - history[-2] < float(tol)


class _PLDABase(Persistable, BaseEstimator):
    """Scoring and persistence shared by the PLDA variants (needs ``mean_``, ``between_``, ``within_``)."""

    def _diagonalise(self):
        """Set ``transform_`` (rows = directions) and ``psi_``: ``T W T^T = I``, ``T B T^T = diag(psi)``."""
        C = np.linalg.cholesky(self.within_)
        T1 = scipy.linalg.solve_triangular(C, np.eye(C.shape[0]), lower=True)  # C^-1
        psi, U = np.linalg.eigh(sym(T1 @ self.between_ @ T1.T))
        order = np.argsort(psi)[::-1]
        self.psi_ = np.maximum(psi[order], 0.0)
        self.transform_ = U[:, order].T @ T1

    def fit(self, X, y):
        """Train on (n, dim) vectors with speaker labels y (n,); returns self.

        The EM runs on small dense matrices, where several BLAS threads only add synchronisation cost
        (badly so on a loaded machine), so it runs with one BLAS thread.
        """
        with threadpool_limits(limits=1, user_api="blas"):
            return self._fit(X, y)

    def transform(self, X):
        """Map vectors to the normalised space (within ``I``, between ``diag(psi_)``): ``(n, dim)``."""
        self._check_fitted("transform_")
        X = check_vectors(X, f"{type(self).__name__}.transform", dim=self.mean_.size)
        return (X - self.mean_) @ self.transform_.T

    def score_pairs(self, enroll, test, n_enroll=1, pairs=None):
        """Verification log-likelihood ratios (natural log).

        enroll : (M, dim) model vectors, each the MEAN of ``n_enroll`` enrolment vectors of one speaker.
        test : (K, dim) test vectors.
        n_enroll : int or (M,) number of enrolment vectors behind each model vector.
        pairs : optional ``(enroll_index (P,), test_index (P,))`` trial list.
        Returns the (M, K) matrix of all pairs, or (P,) scores of the trial list.
        """
        ue, ut = self.transform(enroll), self.transform(test)
        n = np.broadcast_to(np.asarray(n_enroll, dtype=np.float64), (ue.shape[0],))
        if np.any(n < 1):
            raise SpkrecError("PLDA.score_pairs: n_enroll must be >= 1 for every model")
        psi = self.psi_
        npsi = n[:, None] * psi
        inv_v = 1.0 / (1.0 + psi / (npsi + 1.0))   # 1 / predictive variance of t given the enrolment
        mv = npsi / (npsi + 1.0) * ue * inv_v      # predictive mean (speaker posterior mean) / variance
        # LLR = const_e - 0.5 sum t^2 inv_v_e + sum t mv_e + 0.5 sum t^2 / (1 + psi)
        const = 0.5 * (np.log(inv_v).sum(axis=1) - (mv * mv / inv_v).sum(axis=1) + np.log1p(psi).sum())
        inv_tot = 1.0 / (1.0 + psi)
        if pairs is not None:
            ei, ti = (np.asarray(p, dtype=np.int64) for p in pairs)
        if pairs is None or use_dense(len(ue), len(ut), len(ei)):
            t2 = ut * ut
            S = const[:, None] - 0.5 * (inv_v @ t2.T) + mv @ ut.T + 0.5 * (t2 @ inv_tot)[None, :]
            return S if pairs is None else S[ei, ti]
        # sparse trial list: LLR = const_e + [t^2, t] . [0.5 (inv_tot - inv_v_e), mv_e], in cache-sized blocks
        Q = np.hstack([0.5 * (inv_tot - inv_v), mv])
        Z = np.hstack([ut * ut, ut])
        return const[ei] + rowdot_pairs(Q, Z, ei, ti)

    def _get_state(self):
        return {"mean_": self.mean_, "between_": self.between_, "within_": self.within_,
                "log_likelihoods_": np.asarray(self.log_likelihoods_)}, {}

    def _set_state(self, arrays, meta):
        self.mean_, self.between_, self.within_ = arrays["mean_"], arrays["between_"], arrays["within_"]
        self.log_likelihoods_ = list(arrays["log_likelihoods_"])
        self._diagonalise()


class TwoCovPLDA(_PLDABase):
    """Two-covariance PLDA trained as Kaldi's ``ivector-compute-plda`` (``src/ivector/plda.cc``).

    EM from ``B = W = I`` on per-speaker means (each speaker weighs 1) and the within-speaker scatter;
    ``mean_`` is the mean of the speaker means. ``log_likelihoods_`` holds the marginal log-likelihood per
    vector before the first and after every iteration (non-decreasing).

    n_iter : maximum EM iterations.
    tol : stop when an iteration raises the log-likelihood per vector by less than ``tol`` (nats).

    Kaldi stops after a fixed 10 iterations (``--num-em-iters``); on small background sets that is far
    from convergence (so762-mini, 360 i-vectors of dim 100: +0.04 nats per vector at iteration 10,
    +0.001 at 60; EER 3.36 % after 10, 3.08 % after 50), so the default runs to ``tol``.
    """

    def __init__(self, n_iter=200, tol=1e-3):
        self.n_iter = n_iter
        self.tol = tol

    def _fit(self, X, y):
        X = check_vectors(X, "TwoCovPLDA.fit", min_rows=2)
        st = ClassStats(X, y, min_classes=2)
        st.require_repeats("PLDA")
        dim = X.shape[1]
        self.mean_ = st.means.mean(axis=0)
        M = st.means - self.mean_
        groups = [(n, M[st.counts == n]) for n in np.unique(st.counts)]
        N, S = X.shape[0], len(st.classes)
        B, W = np.eye(dim), np.eye(dim)
        self.log_likelihoods_ = [self._objective(B, W, st.within_scatter, groups, N, S)]
        for it in range(int(self.n_iter)):
            Binv, _ = _inv_logdet(B, "between-speaker")
            Winv, _ = _inv_logdet(W, "within-speaker")
            b_stats = np.zeros((dim, dim))
            w_stats = st.within_scatter.copy()
            for n, Mn in groups:
                mixed, _ = _inv_logdet(sym(Binv + n * Winv), "posterior")
                w = n * Mn @ Winv @ mixed           # posterior means of the speaker variable (k, dim)
                r = Mn - w
                b_stats += len(Mn) * mixed + w.T @ w
                w_stats += n * (len(Mn) * mixed + r.T @ r)
            B, W = sym(b_stats / S), sym(w_stats / N)
            self.log_likelihoods_.append(self._objective(B, W, st.within_scatter, groups, N, S))
            log.debug("TwoCovPLDA iteration %d: log-likelihood per vector %.6f", it + 1,
                      self.log_likelihoods_[-1])
            if _converged(self.log_likelihoods_, self.tol):
                break
        self.between_, self.within_ = B, W
        self._diagonalise()
        return self

    @staticmethod
    def _objective(B, W, scatter, groups, N, S):
        """Kaldi's PLDA objective: log-likelihood of the data given B, W and the mean, per vector."""
        dim = W.shape[0]
        Winv, logdet_w = _inv_logdet(W, "within-speaker")
        total = -0.5 * ((N - S) * (logdet_w + dim * LOG_2PI) + np.sum(Winv * scatter))
        for n, Mn in groups:
            Cinv, logdet_c = _inv_logdet(sym(B + W / n), "between-speaker")
            total -= 0.5 * (len(Mn) * (logdet_c + dim * LOG_2PI) + np.sum((Mn @ Cinv) * Mn))
        return total / N


class SimplifiedPLDA(_PLDABase):
    """Simplified PLDA (Prince & Elder 2007): ``x = mean_ + V_ y + e``, ``y ~ N(0, I)``, ``e ~ N(0, Sigma_)``.

    Trained by EM (speaker factors ``y`` hidden) from a deterministic start: ``V`` from the leading
    eigenvectors of the speaker-mean covariance, ``Sigma`` the within-speaker covariance. ``mean_`` is the
    mean of all vectors. ``between_ = V_ V_^T``, ``within_ = Sigma_``; ``log_likelihoods_`` holds the exact
    marginal log-likelihood per vector before the first and after every iteration (non-decreasing).

    n_speaker_factors : rank of the speaker subspace (<= dim).
    n_iter : maximum EM iterations.
    tol : stop when an iteration raises the log-likelihood per vector by less than ``tol`` (nats).
    """

    def __init__(self, n_speaker_factors=100, n_iter=200, tol=1e-3):
        self.n_speaker_factors = n_speaker_factors
        self.n_iter = n_iter
        self.tol = tol

    def _fit(self, X, y):
        X = check_vectors(X, "SimplifiedPLDA.fit", min_rows=2)
        st = ClassStats(X, y, min_classes=2)
        st.require_repeats("PLDA")
        N, dim = X.shape
        q = int(self.n_speaker_factors)
        if not 1 <= q <= dim:
            if q < 1:
                raise SpkrecError(f"SimplifiedPLDA: n_speaker_factors={q}; use 1..{dim}")
            log.warning("SimplifiedPLDA: n_speaker_factors=%d clamped to the dimension %d", q, dim)
            q = dim
        self.mean_ = X.mean(axis=0)
        Xc = X - self.mean_
        scatter = Xc.T @ Xc
        F = st.means * st.counts[:, None] - st.counts[:, None] * self.mean_   # per-speaker sums of x - mean
        groups = [(n, F[st.counts == n]) for n in np.unique(st.counts)]
        # start: V from the speaker-mean covariance, Sigma the within-speaker covariance
        Mc = st.means - st.means.mean(axis=0)
        s, U = np.linalg.eigh(sym(Mc.T @ Mc / len(Mc)))
        s, U = s[::-1][:q], U[:, ::-1][:, :q]
        V = U * np.sqrt(np.maximum(s, 1e-3 * max(s[0], 1e-12)))
        Sigma = sym(st.within_scatter / N) + 1e-6 * np.trace(scatter / N) / dim * np.eye(dim)
        self.log_likelihoods_ = []
        for it in range(int(self.n_iter) + 1):
            P, logdet_s = _inv_logdet(Sigma, "within-speaker")
            VtP = V.T @ P
            VtPV = sym(VtP @ V)
            loglik = -0.5 * (N * (dim * LOG_2PI + logdet_s) + np.sum(P * scatter))
            R = np.zeros((dim, q))
            Ryy = np.zeros((q, q))
            for n, Fn in groups:
                Linv, logdet_l = _inv_logdet(sym(np.eye(q) + n * VtPV), "posterior")
                b = Fn @ VtP.T
                Ey = b @ Linv                      # posterior means of y (k, q)
                loglik += 0.5 * (np.sum(Ey * b) - len(Fn) * logdet_l)
                R += Fn.T @ Ey
                Ryy += n * (len(Fn) * Linv + Ey.T @ Ey)
            self.log_likelihoods_.append(loglik / N)
            if it == int(self.n_iter) or _converged(self.log_likelihoods_, self.tol):
                break
            V = scipy.linalg.solve(Ryy, R.T, assume_a="pos").T
            Sigma = sym((scatter - V @ R.T) / N)
            log.debug("SimplifiedPLDA iteration %d: log-likelihood per vector %.6f", it + 1, loglik / N)
        self.V_, self.Sigma_ = V, Sigma
        self.between_, self.within_ = sym(V @ V.T), Sigma
        self._diagonalise()
        return self

    def _get_state(self):
        arrays, meta = super()._get_state()
        arrays["V_"] = self.V_
        return arrays, meta

    def _set_state(self, arrays, meta):
        super()._set_state(arrays, meta)
        self.V_, self.Sigma_ = arrays["V_"], self.within_
