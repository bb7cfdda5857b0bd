"""Vector transforms for speaker back ends: centering, whitening, LDA, WCCN, length normalisation.

All take ``(n, dim)`` vectors and return float64 ``(n, dim_out)`` vectors; labels ``y`` (speaker ids,
any hashable) are needed by :class:`LDA` and :class:`WCCN` only.
"""
import logging

import numpy as np
import scipy.linalg

from spkrec.backend.base import BackendTransformer, ClassStats, check_vectors, sym
from spkrec.errors import SpkrecError

log = logging.getLogger("spkrec")


class Center(BackendTransformer):
    """Subtract the mean of the training vectors: ``x - mean_``."""

    def fit(self, X, y=None):
        self.mean_ = check_vectors(X, "Center.fit").mean(axis=0)
        return self

    def transform(self, X):
        self._check_fitted("mean_")
        return check_vectors(X, "Center.transform", dim=self.mean_.size) - self.mean_

    def _get_state(self):
        return {"mean_": self.mean_}, {}

    def _set_state(self, arrays, meta):
        self.mean_ = arrays["mean_"]


class Whiten(BackendTransformer):
    """Whitening: ``(x - mean_) @ W_`` has identity covariance on the training vectors.

    method : ``"zca"`` (``W = U diag(s)^-1/2 U^T``, stays closest to the input axes) or ``"pca"``
        (``W = U diag(s)^-1/2``, axes sorted by decreasing variance), with ``cov = U diag(s) U^T``.
    eps : eigenvalues below ``eps * max eigenvalue`` are floored to it (guards singular covariances).
    """

    def __init__(self, method="zca", eps=1e-10):
        self.method = method
        self.eps = eps

    def fit(self, X, y=None):
        if self.method not in ("zca", "pca"):
            raise SpkrecError(f"Whiten: unknown method {self.method!r}; use 'zca' or 'pca'")
        X = check_vectors(X, "Whiten.fit", min_rows=2)
        self.mean_ = X.mean(axis=0)
        D = X - self.mean_
        s, U = np.linalg.eigh(sym(D.T @ D / X.shape[0]))
        s, U = s[::-1], U[:, ::-1]
        s = np.maximum(s, self.eps * max(s[0], np.finfo(float).tiny))
        W = U / np.sqrt(s)
        self.W_ = W @ U.T if self.method == "zca" else W
        return self

    def transform(self, X):
        self._check_fitted("W_")
        return (check_vectors(X, "Whiten.transform", dim=self.mean_.size) - self.mean_) @ self.W_

    def _get_state(self):
        return {"mean_": self.mean_, "W_": self.W_}, {}

    def _set_state(self, arrays, meta):
        self.mean_, self.W_ = arrays["mean_"], arrays["W_"]


class LDA(BackendTransformer):
    """Fisher linear discriminant analysis: ``(x - mean_) @ W_`` with ``W_ (dim, n_components_)``.

    Within-class covariance ``S_w = 1/N sum_i (x_i - mu_{y_i})(x_i - mu_{y_i})^T`` and between-class
    covariance ``S_b = 1/N sum_s n_s (mu_s - mu)(mu_s - mu)^T`` (sample weighted, as scikit-learn);
    ``W_`` holds the leading generalised eigenvectors of ``S_b v = lambda S_w v`` scaled so that
    ``W_^T S_w W_ = I``: after projection the within-class covariance is the identity and the
    between-class covariance is ``diag(eigenvalues_)`` (decreasing).

    n_components : output dimension; more than ``min(dim, speakers - 1)`` is clamped (with a warning)
        because the further directions carry no between-class variance.
    reg : ridge ``reg * trace(S_w) / dim`` added to ``S_w`` (0 = none).
    """

    def __init__(self, n_components=150, reg=0.0):
        self.n_components = n_components
        self.reg = reg

    def fit(self, X, y):
        X = check_vectors(X, "LDA.fit", min_rows=2)
        st = ClassStats(X, y, min_classes=2)
        st.require_repeats("LDA")
        N, dim = X.shape
        Sw = st.within_scatter / N
        Sw = sym(Sw + self.reg * np.trace(Sw) / dim * np.eye(dim))
        M = st.means - st.mean
        Sb = sym((M * st.counts[:, None]).T @ M / N)
        k = int(self.n_components)
        k_max = min(dim, len(st.classes) - 1)
        if k < 1:
            raise SpkrecError(f"LDA: n_components={k}; use a positive dimension")
        if k > k_max:
            log.warning("LDA: n_components=%d clamped to %d (dim %d, %d speakers)", k, k_max, dim,
                        len(st.classes))
            k = k_max
        try:
            evals, V = scipy.linalg.eigh(Sb, Sw, subset_by_index=[dim - k, dim - 1])
        except np.linalg.LinAlgError:
            raise SpkrecError("LDA: the within-class covariance is singular (fewer vectors than dimensions, "
                              "or duplicated vectors); use more utterances per speaker or set reg > 0"
                              ) from None
        self.mean_ = st.mean
        self.W_ = V[:, ::-1]
        self.eigenvalues_ = evals[::-1]
        self.n_components_ = k
        return self

    def transform(self, X):
        self._check_fitted("W_")
        return (check_vectors(X, "LDA.transform", dim=self.mean_.size) - self.mean_) @ self.W_

    def _get_state(self):
        return {"mean_": self.mean_, "W_": self.W_, "eigenvalues_": self.eigenvalues_}, {}

    def _set_state(self, arrays, meta):
        self.mean_, self.W_, self.eigenvalues_ = arrays["mean_"], arrays["W_"], arrays["eigenvalues_"]
        self.n_components_ = self.W_.shape[1]


class WCCN(BackendTransformer):
    """Within-class covariance normalisation (Hatch et al. 2006): ``x @ W_`` with ``W_ W_^T = C^-1``.

    ``C = 1/S sum_s 1/n_s sum_{i in s} (x_i - mu_s)(x_i - mu_s)^T`` (each speaker weighs the same); ``W_`` is
    the lower Cholesky factor of ``C^-1``, so the transformed vectors have within-class covariance ``I``
    (same definition of ``C``). No centering: it is a linear map.

    reg : ridge ``reg * trace(C) / dim`` added to ``C`` before inversion (0 = none).
    """

    def __init__(self, reg=0.0):
        self.reg = reg

    def fit(self, X, y):
        X = check_vectors(X, "WCCN.fit", min_rows=2)
        st = ClassStats(X, y)
        st.require_repeats("WCCN")
        D = (X - st.means[st.codes]) / np.sqrt(st.counts[st.codes])[:, None]
        C = D.T @ D / len(st.classes)
        dim = X.shape[1]
        C = sym(C + self.reg * np.trace(C) / dim * np.eye(dim))
        try:
            self.W_ = np.linalg.cholesky(np.linalg.inv(C))
        except np.linalg.LinAlgError:
            raise SpkrecError("WCCN: the within-class covariance is singular; put WCCN after LDA to a "
                              "dimension below the number of training vectors, or set reg > 0") from None
        return self

    def transform(self, X):
        self._check_fitted("W_")
        return check_vectors(X, "WCCN.transform", dim=self.W_.shape[0]) @ self.W_

    def _get_state(self):
        return {"W_": self.W_}, {}

    def _set_state(self, arrays, meta):
        self.W_ = arrays["W_"]


class LengthNorm(BackendTransformer):
    """Length normalisation (Garcia-Romero & Espy-Wilson 2011): ``x / ||x||`` times a scale.

    scale : ``"sqrt_dim"`` (norm ``sqrt(dim)``, Kaldi's ``--simple-length-normalization``: a vector of
        unit-variance components keeps its expected squared norm ``dim``, which suits PLDA) or
        ``"unit"`` (norm 1). Apply it after centering/whitening so the origin is the data mean.
    Zero vectors stay zero. Stateless; ``fit`` only records the dimension.
    """

    def __init__(self, scale="sqrt_dim"):
        self.scale = scale

    def fit(self, X, y=None):
        if self.scale not in ("sqrt_dim", "unit"):
            raise SpkrecError(f"LengthNorm: unknown scale {self.scale!r}; use 'sqrt_dim' or 'unit'")
        self.dim_ = check_vectors(X, "LengthNorm.fit").shape[1]
        return self

    def transform(self, X):
        self._check_fitted("dim_")
        X = check_vectors(X, "LengthNorm.transform", dim=self.dim_)
        target = np.sqrt(X.shape[1]) if self.scale == "sqrt_dim" else 1.0
        norms = np.linalg.norm(X, axis=1, keepdims=True)
        return X * (target / np.where(norms > 0, norms, 1.0))

    def _get_state(self):
        return {"dim_": np.array(self.dim_)}, {}

    def _set_state(self, arrays, meta):
        self.dim_ = int(arrays["dim_"])
