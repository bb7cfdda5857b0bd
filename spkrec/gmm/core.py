"""The mixture core: the mathematics every Gaussian mixture in spkrec shares.

One place for, diagonal and full covariances alike,

- **packed log-likelihood coefficients**: ``log w_c + log N(x | mu_c, Sigma_c)`` is linear in packed
  features of the frame, so all ``(T, C)`` component log-likelihoods are float32 matrix products.
  Diagonal: features ``[x, x**2, 1]`` against :func:`diag_coefficients` (2D+1, C)::

      sum_d x_d mu_cd / var_cd  -  0.5 sum_d x_d**2 / var_cd  +  const_c
      const_c = log w_c - 0.5 sum_d (log(2 pi var_cd) + mu_cd**2 / var_cd)

  Full: features ``[x_i x_j (i<=j), x, 1]`` against :func:`full_coefficients` (P+D+1, C).
  Frames are shifted first (by the model's weighted mean; an exact change of variables) so that
  float32 keeps its precision when features are far from zero;
- **top-k Gaussian selection** (:func:`top_k`: Kaldi ``gmm-gselect``, Reynolds' top-C);
- **pruned posteriors** (:func:`pruned_exp`, :func:`posteriors`): entries whose log is more than
  :data:`PRUNE` below the frame's best are zero (exact to float32 and avoids slow denormals);
- **statistics of order 0, 1, 2**: :class:`GmmStats` / :func:`accumulate` (EM of a diagonal GMM,
  MAP, supervectors) and :func:`centred_stats` (i-vector statistics, centred on the UBM means).

Two evaluation orders of the diagonal coefficients exist and are kept apart on purpose:
:meth:`PackedGMM.component_loglik` (one ``(T, 2D+1) @ (2D+1, C)`` product: EM, MAP, GMM-UBM scoring)
and :func:`diag_loglik` (three products on centred frames: Gaussian selection and diagonal posteriors
of the i-vector statistics). They agree to float32 rounding; merging them would change the recipes'
i-vector scores in their last digits, which this refactoring was not allowed to do.
"""
from dataclasses import dataclass

import numpy as np

from spkrec.errors import SpkrecError

LOG_2PI = float(np.log(2.0 * np.pi))
PRUNE = 50.0
"""Posteriors below ``exp(-PRUNE)`` (2e-22) times the frame's best are set to zero."""
_PRUNE_FLOOR = np.float32(np.exp(-PRUNE))


OLD_PARAM_NAMES = {"num_gauss": "n_components", "num_iters": "n_iter", "num_iters_per_split": "n_iter_per_split",
                   "tv_dim": "n_components"}
"""Hyper-parameter names of model files written before the scikit-learn naming (read by ``load``)."""


def saved_params(meta, estimator_cls):
    """The hyper-parameters of ``estimator_cls`` found in a model file's ``meta`` (old names translated)."""
    names = estimator_cls._get_param_names()
    params = {OLD_PARAM_NAMES.get(k, k): v for k, v in meta.items()}
    return {k: params[k] for k in names if k in params}


# ---------------------------------------------------------------------- frames
def as_frames(X, dim, name=None):
    """``X`` as a C-contiguous (T, dim) float32 array; SpkrecError (naming utterance ``name``) otherwise."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[1] != dim:
        what = f"utterance {name!r}: " if name is not None else ""
        raise SpkrecError(f"{what}features have shape {X.shape}, the UBM expects (frames, {dim}); "
                          "use the same feature options as for the UBM")
    return np.ascontiguousarray(X, dtype=np.float32)


def gaussian_params(model):
    """``(weights (C,), means (C, D), covariances)`` float64 of a mixture: (C, D, D) covariances for a
    full-covariance model (``covariances_``), (C, D) variances for a diagonal one (``variances_``)."""
    cov_attr = "covariances_" if hasattr(model, "covariances_") else "variances_"
    for attr in ("weights_", "means_", cov_attr):
        if not hasattr(model, attr):
            raise SpkrecError(f"UBM object {type(model).__name__} has no {attr}; pass a fitted DiagGMM or FullGMM")
    return (np.asarray(model.weights_, np.float64), np.asarray(model.means_, np.float64),
            np.asarray(getattr(model, cov_attr), np.float64))


# ---------------------------------------------------------------------- diagonal coefficients
def diag_coefficients(weights, means, variances, shift):
    """(2D+1, C) float32 W with ``[x - shift, (x - shift)**2, 1] @ W = log w_c + log N(x | mu_c, var_c)``."""
    weights = np.asarray(weights, dtype=np.float64)
    variances = np.asarray(variances, dtype=np.float64)
    mu = np.asarray(means, dtype=np.float64) - shift
    inv_var = 1.0 / variances
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    const = log_w - 0.5 * (np.sum(np.log(variances), axis=1) + mu.shape[1] * LOG_2PI
                           + np.sum(mu * mu * inv_var, axis=1))
    return np.concatenate([(mu * inv_var).T, (-0.5 * inv_var).T, const[None, :]]).astype(np.float32)


def diag_loglik(Xc, W):
    """(T, C) float32 log-likelihoods of shifted frames ``Xc`` (T, D) float32 as three products
    (the i-vector statistics' order; :meth:`PackedGMM.component_loglik` is the one-product order)."""
    D = Xc.shape[1]
    return Xc @ W[:D] + (Xc * Xc) @ W[D:2 * D] + W[2 * D]


class PackedGMM:
    """Float32 E-step matrices of a diagonal GMM (built once per EM iteration, picklable).

    ``shift`` (D,) float64 is subtracted from features (default: the weighted mean of the means);
    ``proj`` (2D+1, C) float32 (:func:`diag_coefficients`) multiplies ``[x - shift, (x - shift)**2, 1]``.
    """

    def __init__(self, weights, means, variances, shift=None):
        weights = np.asarray(weights, dtype=np.float64)
        means = np.asarray(means, dtype=np.float64)
        self.num_gauss, self.dim = means.shape
        self.shift = weights @ means / weights.sum() if shift is None else np.asarray(shift, np.float64)
        self.proj = diag_coefficients(weights, means, variances, self.shift)

    def expand(self, X):
        """``[x - shift, (x - shift)**2, 1]`` as a (T, 2D+1) float32 array."""
        X = np.asarray(X)
        T = X.shape[0]
        Z = np.empty((T, 2 * self.dim + 1), dtype=np.float32)
        xs = Z[:, :self.dim]
        np.subtract(X, self.shift.astype(np.float32), out=xs, casting="unsafe")
        np.multiply(xs, xs, out=Z[:, self.dim:2 * self.dim])
        Z[:, -1] = 1.0
        return Z

    def component_loglik(self, X):
        """(T, C) float32 ``log w_c + log N(x_t | c)``."""
        return self.expand(X) @ self.proj


# ---------------------------------------------------------------------- full-covariance coefficients
class Quadratic:
    """Index sets for packed upper-triangular quadratic features ``x_i x_j (i <= j)`` of D-dim frames."""

    def __init__(self, dim):
        self.iu = np.triu_indices(dim)
        self.offdiag = (self.iu[0] != self.iu[1])

    def features(self, Xc):
        """(T, P) products ``x_i x_j``, P = D(D+1)/2."""
        return Xc[:, self.iu[0]] * Xc[:, self.iu[1]]

    def pack(self, mats):
        """(C, D, D) symmetric -> (C, P) upper triangles."""
        return mats[:, self.iu[0], self.iu[1]]

    def unpack(self, packed, dim):
        """(..., P) upper triangles -> (..., D, D) symmetric."""
        out = np.zeros(packed.shape[:-1] + (dim, dim), dtype=packed.dtype)
        out[..., self.iu[0], self.iu[1]] = packed
        out[..., self.iu[1], self.iu[0]] = packed
        return out


def full_coefficients(weights, means, covariances):
    """``(W, center, quad)``: float32 W (P+D+1, C) on ``[quad(x - center), x - center, 1]`` giving
    ``log w_c + log N(x | mu_c, Sigma_c)``; ``center`` (D,) float64 the weighted mean; ``quad`` a :class:`Quadratic`."""
    weights = np.asarray(weights, np.float64)
    means = np.asarray(means, np.float64)
    covariances = np.asarray(covariances, np.float64)
    D = means.shape[1]
    quad = Quadratic(D)
    center = weights @ means
    mu = means - center
    chol = np.linalg.cholesky(covariances)
    prec = np.linalg.inv(covariances)
    prec = 0.5 * (prec + prec.transpose(0, 2, 1))
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1)
    pmu = np.einsum("cij,cj->ci", prec, mu)
    const = np.log(weights) - 0.5 * (D * LOG_2PI + logdet + (pmu * mu).sum(1))
    quad_coef = -0.5 * quad.pack(prec) * np.where(quad.offdiag, 2.0, 1.0)
    W = np.ascontiguousarray(np.hstack([quad_coef, pmu, const[:, None]]).T, dtype=np.float32)
    return W, center, quad


def full_loglik(Q, Xc, W):
    """(T, C) float32 log-likelihoods from quadratic features ``Q`` (T, P) and shifted frames ``Xc`` (T, D)."""
    D = Xc.shape[1]
    P = W.shape[0] - D - 1
    return Q @ W[:P] + Xc @ W[P:P + D] + W[-1]


def full_factors(weights, means, covariances):
    """``(factor (C, D, D), const (C,))`` float32 of a full-covariance mixture for
    :func:`selected_full_loglik`: ``(x - mu_c) @ factor[c] = L_c^-1 (x - mu_c)`` with ``Sigma_c = L_c L_c'``
    (its squared norm is the Mahalanobis distance), ``const_c = log w_c - 0.5 (D log 2 pi + log det Sigma_c)``."""
    cov = np.asarray(covariances, np.float64)
    chol = np.linalg.cholesky(cov)
    eye = np.broadcast_to(np.eye(cov.shape[1]), cov.shape)
    factor = np.linalg.solve(chol, eye).transpose(0, 2, 1)
    with np.errstate(divide="ignore"):
        const = np.log(np.asarray(weights, np.float64)) - 0.5 * (
            cov.shape[1] * LOG_2PI + 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(1))
    return np.ascontiguousarray(factor, np.float32), const.astype(np.float32)


def gaussian_groups(sel, num_gauss):
    """The (frame, Gaussian) pairs of a selection ``sel`` (T, k) grouped by Gaussian: ``(order, bounds,
    frames)`` with ``order`` the flat pair indices sorted (stably) by Gaussian, group ``g`` the pairs
    ``order[bounds[g]:bounds[g + 1]]`` and ``frames`` the frame of each sorted pair."""
    gauss = sel.ravel()
    order = np.argsort(gauss.astype(np.int16 if num_gauss < 32768 else np.int64), kind="stable")
    bounds = np.concatenate([[0], np.cumsum(np.bincount(gauss, minlength=num_gauss))])
    return order, bounds, order // sel.shape[1]


def selected_full_loglik(Xc, sel, factor, means_c, const, groups=None):
    """(T, k) float32 ``log w_c + log N(x_t | mu_c, Sigma_c)`` of the selected pairs ``sel`` (T, k) only,
    for shifted frames ``Xc`` (T, D) float32 and means ``means_c`` shifted alike (``factor``, ``const``
    from :func:`full_factors`). Pairs are grouped by Gaussian (:func:`gaussian_groups`, or ``groups``
    already computed): one ``(rows, D) @ (D, D)`` float32 product per Gaussian, at least two rows (never
    a matrix-vector product, whose summation order differs), so a row's result does not depend on the
    other frames of ``Xc``. ``k`` of C Gaussians' work instead of all of them."""
    T, k = sel.shape
    order, bounds, frames = gaussian_groups(sel, len(const)) if groups is None else groups
    q = np.empty(T * k, np.float32)
    for g in np.flatnonzero(np.diff(bounds)):
        lo, hi = bounds[g], bounds[g + 1]
        idx = frames[lo:hi] if hi - lo > 1 else np.repeat(frames[lo:hi], 2)
        Y = Xc.take(idx, axis=0)
        Y -= means_c[g]
        Y = Y @ factor[g]
        Y *= Y
        q[lo:hi] = Y.sum(1)[:hi - lo]
    gauss = sel.ravel()
    ll = np.empty(T * k, np.float32)
    ll[order] = const[gauss[order]] - np.float32(0.5) * q
    return ll.reshape(T, k)


# ---------------------------------------------------------------------- selection and posteriors
def top_k(ll, k):
    """(T, k') indices of the ``k' = min(k, C)`` largest entries of each row of ``ll`` (T, C), in
    increasing order (all components, as a broadcast ``arange``, when ``k`` is None or >= C).

    Each row's k-th largest value comes from ``np.partition`` (a vectorised selection, 5x faster than
    ``np.argpartition`` here); the entries at least that large are the selection. A row whose k-th
    value is tied (more than k such entries) takes ``np.argpartition``'s choice."""
    T, C = ll.shape
    if k is None or k >= C:
        return np.broadcast_to(np.arange(C), (T, C))
    if k < 1:
        raise SpkrecError(f"the number of selected Gaussians must be positive, got {k}")
    k = int(k)
    if T == 0:
        return np.zeros((0, k), np.intp)
    kth = np.partition(ll, C - k, axis=1)[:, C - k:C - k + 1]
    mask = ll >= kth
    counts = np.count_nonzero(mask, axis=1)
    tied = np.flatnonzero(counts != k)
    if len(tied):  # ties (or NaN): the rows' own selection
        mask[tied] = False
        mask[tied[:, None], np.argpartition(ll[tied], C - k, axis=1)[:, C - k:]] = True
    return (np.flatnonzero(mask) % C).reshape(T, k)


def masked_to_selection(ll, sel):
    """Copy of ``ll`` (T, C) with every entry outside the selection ``sel`` (T, k) set to -inf."""
    if sel.shape[1] == ll.shape[1]:
        return ll
    out = np.full_like(ll, -np.inf)
    rows = np.arange(ll.shape[0])[:, None]
    out[rows, sel] = ll[rows, sel]
    return out


def pruned_exp(ll):
    """In place: (T, C) float32 log-likelihoods -> *unnormalised* pruned posteriors ``exp(ll - best)``
    (zero below ``exp(-PRUNE)``). Returns ``(best (T,), total (T,))`` float32: the frames' best log-likelihood
    and the sums that normalise the rows; ``best + log(total)`` is the frame log-likelihood."""
    best = ll.max(axis=1)
    ll -= best[:, None]
    np.exp(ll, out=ll)
    ll *= ll >= _PRUNE_FLOOR        # a multiply is ~10x faster than masked assignment
    total = ll.sum(axis=1)
    return best, total


def posteriors_inplace(ll):
    """:func:`pruned_exp`, returning ``(frame_loglik (T,) float64, total (T,) float32)``."""
    best, total = pruned_exp(ll)
    return best.astype(np.float64) + np.log(total.astype(np.float64)), total


def posteriors(ll):
    """Normalised pruned posteriors (T, C) float32 of ``ll`` (not modified) and the frame log-likelihoods (T,) float32."""
    post = np.array(ll, dtype=np.float32)
    best, total = pruned_exp(post)
    post /= total[:, None]
    return post, best + np.log(total)


# ---------------------------------------------------------------------- statistics of order 0, 1, 2
def centred_stats(post, Xc, means_c, second_order=False, full=False):
    """Statistics of one utterance from its posteriors ``post`` (T, C) float32 and shifted frames ``Xc``
    (T, D) float32, centred on the (equally shifted) means ``means_c`` (C, D) float32.

    Returns ``N (C,) float32``, ``F (C, D) float32 = sum_t gamma_tc (x_t - m_c)`` and, with
    ``second_order``, the float64 ``S_c = sum_t gamma_tc (x_t - m_c)(x_t - m_c)'`` ((C, D, D) with
    ``full``, else (C, D) diagonals; None without ``second_order``).
    """
    N = post.sum(0, dtype=np.float64)
    F = post.T @ Xc - N[:, None].astype(np.float32) * means_c
    if not second_order:
        return N.astype(np.float32), F, None
    C, D = means_c.shape
    post = post.astype(np.float64)
    X64 = Xc.astype(np.float64)
    m = means_c.astype(np.float64)
    F64 = post.T @ X64 - N[:, None] * m
    if not full:  # sum g x^2 - 2 m F - N m^2 (x, m shifted alike)
        S = post.T @ (X64 * X64) - 2.0 * m * F64 - N[:, None] * m * m
    else:
        iu = np.triu_indices(D)
        Q = np.zeros((C, D, D))
        Q[:, iu[0], iu[1]] = post.T @ (X64[:, iu[0]] * X64[:, iu[1]])
        Q = Q + np.triu(Q, 1).transpose(0, 2, 1)
        mF = m[:, :, None] * F64[:, None, :]
        S = Q - mF - mF.transpose(0, 2, 1) - N[:, None, None] * m[:, :, None] * m[:, None, :]
    return N.astype(np.float32), F, S


@dataclass
class GmmStats:
    """Sufficient statistics of a diagonal GMM over some frames (float64).

    ``occupancy`` N (C,), ``first`` F (C, D) = sum_t gamma_tc x_t, ``second`` S (C, D) =
    sum_t gamma_tc x_t**2, ``loglik`` total frame log-likelihood, ``num_frames``.
    """
    occupancy: np.ndarray
    first: np.ndarray
    second: np.ndarray
    loglik: float = 0.0
    num_frames: int = 0

    @classmethod
    def zeros(cls, num_gauss, dim):
        return cls(np.zeros(num_gauss), np.zeros((num_gauss, dim)), np.zeros((num_gauss, dim)), 0.0, 0)

    def __iadd__(self, other):
        self.occupancy += other.occupancy
        self.first += other.first
        self.second += other.second
        self.loglik += other.loglik
        self.num_frames += other.num_frames
        return self

    @property
    def avg_loglik(self):
        """Average log-likelihood per frame."""
        return self.loglik / max(self.num_frames, 1)


PIECE_BYTES = 1 << 20
"""Frames go through the E-step in pieces whose (T, C) float32 posteriors take about this much (at
least 256 frames): they and the (T, 2D+1) features stay in a core's L2 cache between the two products
and the element-wise passes (measured on so762-mini, 60 dims, 128 Gaussians, one thread: 2,048-frame
pieces 1.65x faster than 50,000-frame ones)."""


def piece_frames(num_gauss):
    """Frames per E-step piece for ``num_gauss`` Gaussians (see :data:`PIECE_BYTES`)."""
    return max(256, PIECE_BYTES // (4 * max(1, int(num_gauss))) // 256 * 256)


def accumulate(packed, X, stats=None, second_order=True):
    """Add the statistics of frames ``X`` (T, D) under ``packed`` to ``stats`` (a :class:`GmmStats`).

    Per piece of :func:`piece_frames` frames, one float32 product gives log-likelihoods; a second,
    ``post.T @ [x, x**2, 1] / sum``, gives F, S and N together (dividing the (T, 2D+1) features by the
    frame sums instead of the (T, C) posteriors). The pieces' statistics are summed in float64 and
    un-shifted before they are added.
    """
    if stats is None:
        stats = GmmStats.zeros(packed.num_gauss, packed.dim)
    if len(X) == 0:
        return stats
    D = packed.dim
    cols = 2 * D + 1 if second_order else D + 1
    acc = np.zeros((packed.num_gauss, cols))
    loglik = 0.0
    step = piece_frames(packed.num_gauss)
    for start in range(0, len(X), step):
        Z = packed.expand(X[start:start + step])
        ll = Z @ packed.proj
        frame_loglik, total = posteriors_inplace(ll)
        Z /= total[:, None]
        # [x, x^2, 1]: F, S from the first columns, N from the last one
        acc += ll.T @ Z[:, :cols] if second_order else ll.T @ np.concatenate([Z[:, :D], Z[:, -1:]], axis=1)
        loglik += float(frame_loglik.sum())
    N = acc[:, -1] if second_order else acc[:, D]
    Fs = acc[:, :D]
    shift = packed.shift
    stats.occupancy += N
    stats.first += Fs + N[:, None] * shift
    if second_order:
        Ss = acc[:, D:2 * D]
        stats.second += Ss + 2.0 * shift * Fs + N[:, None] * (shift * shift)
    stats.loglik += loglik
    stats.num_frames += len(X)
    return stats
