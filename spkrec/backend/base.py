"""Shared pieces of the back ends: input checks, class statistics and pickle-free save/load.

Every back end takes plain ``(n, dim)`` vectors (i-vectors, supervectors, neural embeddings) and
does its maths in float64 (the matrices are small).
"""
import logging

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator, TransformerMixin

from spkrec.errors import SpkrecError
from spkrec.io.atomic import load_npz, save_npz

log = logging.getLogger("spkrec")


def check_vectors(X, what="vectors", dim=None, min_rows=1):
    """Return ``X`` as a finite float64 ``(n, dim)`` array or raise :class:`SpkrecError`."""
    X = np.asarray(X, dtype=np.float64)
    if X.ndim == 1:
        X = X[None, :]
    if X.ndim != 2:
        raise SpkrecError(f"{what}: expected a (n, dim) array, got shape {X.shape}; pass one vector per row")
    if X.shape[0] < min_rows:
        raise SpkrecError(f"{what}: need at least {min_rows} vectors, got {X.shape[0]}; give more data")
    if dim is not None and X.shape[1] != dim:
        raise SpkrecError(f"{what}: vectors have dimension {X.shape[1]}, the model expects {dim}; "
                          "use vectors of the kind the model was trained on")
    if not np.all(np.isfinite(X)):
        raise SpkrecError(f"{what}: contains NaN or infinite values; check the vector extraction")
    return X


def encode_labels(y, n, what="labels"):
    """Map labels (any hashable) to ``0..S-1`` in sorted order; returns ``(codes (n,), classes)``."""
    y = np.asarray(y)
    if y.shape != (n,):
        raise SpkrecError(f"{what}: got {y.shape[0] if y.ndim else 0} labels for {n} vectors; "
                          "give one speaker label per vector")
    classes, codes = np.unique(y, return_inverse=True)
    return codes.ravel(), classes


class ClassStats:
    """Per-class statistics of labelled vectors.

    Attributes: ``counts (S,)``, ``means (S, dim)``, ``mean (dim,)`` (of all vectors),
    ``within_scatter (dim, dim)`` = sum over vectors of ``(x - mean_class)(x - mean_class)^T``.
    """

    def __init__(self, X, y, min_classes=1):
        codes, self.classes = encode_labels(y, X.shape[0])
        if len(self.classes) < min_classes:
            raise SpkrecError(f"labels: {len(self.classes)} classes (speakers), need at least {min_classes}; "
                              "train on more speakers")
        S = len(self.classes)
        self.codes = codes
        self.counts = np.bincount(codes, minlength=S).astype(np.float64)
        self.means = _group_sums(X, codes, S) / self.counts[:, None]
        self.mean = X.mean(axis=0)
        D = X - self.means[codes]
        self.within_scatter = D.T @ D

    def require_repeats(self, who):
        """Raise when no class has 2 vectors (no within-class information at all); warn about singletons.

        A class with one vector adds nothing to within-class statistics; when all are such, a model
        would silently take the total covariance for both within and between (``who``: e.g. ``"LDA"``).
        """
        single = int(np.count_nonzero(self.counts < 2))
        if single == len(self.classes):
            raise SpkrecError(f"{who}: every one of the {single} speakers has a single training vector, so "
                              "there is no within-speaker variability to learn; train on several utterances "
                              f"per speaker (utt2spk), or remove {who.lower()} from --steps")
        if single:
            log.warning("%s: %d of %d speakers have a single training vector (no within-speaker "
                        "information from them)", who, single, len(self.classes))


def _group_sums(X, codes, n_groups):
    """Row sums of ``X`` per group ``codes`` (n,) -> (n_groups, dim), as one sparse one-hot product."""
    onehot = scipy.sparse.csr_matrix((np.ones(len(codes)), (codes, np.arange(len(codes)))),
                                     shape=(n_groups, len(codes)))
    return np.asarray(onehot @ X)


def group_means(X, groups):
    """Average rows of ``X`` by integer group ``0..G-1``; returns ``(means (G, dim), counts (G,))``."""
    X = np.asarray(X, dtype=np.float64)
    groups = np.asarray(groups, dtype=np.int64)
    G = int(groups.max()) + 1 if groups.size else 0
    counts = np.bincount(groups, minlength=G).astype(np.float64)
    if np.any(counts == 0):
        raise SpkrecError("enrolment groups: some model has no vectors; every model needs at least one")
    return _group_sums(X, groups, G) / counts[:, None], counts


def rowdot_pairs(A, B, ia, ib, block=4096):
    """``sum_j A[ia, j] * B[ib, j]`` for index arrays ``ia``, ``ib`` (P,), in blocks (bounded memory)."""
    out = np.empty(len(ia))
    for lo in range(0, len(ia), block):
        out[lo:lo + block] = np.einsum("ij,ij->i", A[ia[lo:lo + block]], B[ib[lo:lo + block]])
    return out


def use_dense(n_rows, n_cols, n_pairs):
    """Whether a trial list of ``n_pairs`` is best scored through the full (n_rows, n_cols) score matrix."""
    cells = n_rows * n_cols
    return cells <= (1 << 20) or (cells <= 16 * n_pairs and cells <= (1 << 25))


def sym(A):
    """Symmetric part of a square matrix (removes round-off asymmetry)."""
    return 0.5 * (A + A.T)


class Persistable:
    """``save(path)``/``load(path)`` for estimators that define ``_get_state() -> (arrays, meta)``
    and ``_set_state(arrays, meta)``; the file is an atomic, pickle-free ``.npz``."""

    def _get_state(self):
        raise NotImplementedError

    def _set_state(self, arrays, meta):
        raise NotImplementedError

    def save(self, path):
        arrays, meta = self._get_state()
        save_npz(path, type(self).__name__, arrays, {"params": self.get_params(), **meta})

    @classmethod
    def load(cls, path):
        arrays, meta = load_npz(path, cls.__name__)
        return cls.from_state(arrays, meta)

    @classmethod
    def from_state(cls, arrays, meta):
        obj = cls(**meta.get("params", {}))
        obj._set_state(arrays, meta)
        return obj

    def _check_fitted(self, attr):
        if not hasattr(self, attr):
            raise SpkrecError(f"{type(self).__name__}: not fitted; call fit() or load a trained model first")


class BackendTransformer(Persistable, TransformerMixin, BaseEstimator):
    """Base of the vector transforms (fit on labelled or unlabelled vectors, transform any vectors)."""
