"""Baum-Welch statistics for i-vectors: zeroth order N (C,) and first order F (C, D) centred on the
UBM means, from posteriors pruned as Kaldi's ``extract_ivectors.sh`` does.

Posteriors come from the UBM passed in (full covariance for a :class:`FullGMM`, diagonal for a
``DiagGMM``), restricted per frame to the ``num_gselect`` best Gaussians of the diagonal UBM (for a
full UBM, its diagonal: ``fgmm-global-to-gmm``), renormalised, then entries below ``min_post`` are
dropped and the rest renormalised (``fgmm-global-gselect-to-post --min-post``; the best Gaussian is
always kept). ``posterior_scale`` multiplies N and F (Kaldi ``scale-post``).
"""
import numpy as np
from threadpoolctl import threadpool_limits

from spkrec.gmm.core import (as_frames, centred_stats, diag_coefficients, diag_loglik, full_coefficients, full_loglik,
                             gaussian_params, masked_to_selection, posteriors, top_k)
from spkrec.io.frames import frame_source
from spkrec.parallel import NUM_CHUNKS, SERIAL, SharedArrays, map_chunks

STATS_DEFAULTS = {"num_gselect": 20, "min_post": 0.025, "posterior_scale": 1.0}
"""Defaults of the statistics options (Kaldi's ``extract_ivectors.sh``), and of the CLI's flags."""
MIN_CHUNK_UTTS = 16  # utterances per chunk at least (results are per utterance: chunking changes nothing)


class StatsComputer:
    """Picklable per-utterance statistics computer for one UBM (coefficients precomputed once)."""

    def __init__(self, ubm, num_gselect=20, min_post=0.025, posterior_scale=1.0, config=SERIAL):
        weights, means, cov = gaussian_params(ubm)
        self.full = cov.ndim == 3
        variances = np.diagonal(cov, axis1=1, axis2=2) if self.full else cov
        self.center = (weights @ means).astype(np.float32)
        self.means_c = (means - weights @ means).astype(np.float32)
        self.gselect_w = diag_coefficients(weights, means, variances, weights @ means)
        if self.full:
            coef = getattr(ubm, "coefficients", None)
            W, center, self.quad = coef() if coef is not None else full_coefficients(weights, means, cov)
            self._shared = SharedArrays(dict(full_w=W), config)  # (P+D+1, C): sent once per worker
        self.num_gselect = int(num_gselect)
        self.min_post = float(min_post)
        self.posterior_scale = float(posterior_scale)

    @property
    def full_w(self):
        return self._shared["full_w"]

    @property
    def num_gauss(self):
        return self.means_c.shape[0]

    @property
    def dim(self):
        return self.means_c.shape[1]

    def posteriors(self, X):
        """(T, C) float32 pruned posteriors of frames X (T, D)."""
        Xc = as_frames(X, self.dim) - self.center
        return self._posteriors(Xc)

    def _posteriors(self, Xc):
        diag_ll = diag_loglik(Xc, self.gselect_w)
        sel = top_k(diag_ll, self.num_gselect)
        ll = full_loglik(self.quad.features(Xc), Xc, self.full_w) if self.full else diag_ll
        post, _ = posteriors(masked_to_selection(ll, sel))
        if self.min_post > 0:
            keep = post >= self.min_post
            keep[np.arange(len(post)), post.argmax(1)] = True
            post = np.where(keep, post, 0.0).astype(np.float32)
            post /= post.sum(1, keepdims=True)
        return post

    def __call__(self, X, name=None):
        """``(N (C,), F (C, D))`` float32 statistics of one utterance's frames X (T, D)."""
        return self.with_second_order(X, name, False)[:2]

    def with_second_order(self, X, name=None, second_order=True):
        """``(N, F, S)`` of one utterance: N, F as ``__call__`` and the float64 second-order statistics
        centred on the UBM means like F, ``S_c = sum_t gamma_tc (x_t - m_c)(x_t - m_c)'`` ((C, D, D) for a
        full UBM, (C, D) diagonals for a diagonal one), from the same pruned, scaled posteriors
        (S is None without ``second_order``)."""
        Xc = as_frames(X, self.dim, name) - self.center
        C, D = self.num_gauss, self.dim
        if len(Xc) == 0:
            S = np.zeros((C, D, D) if self.full else (C, D)) if second_order else None
            return np.zeros(C, np.float32), np.zeros((C, D), np.float32), S
        post = self._posteriors(Xc)
        if self.posterior_scale != 1.0:
            post *= self.posterior_scale
        return centred_stats(post, Xc, self.means_c, second_order, self.full)


def utterance_stats(ubm, X, num_gselect=20, min_post=0.025, posterior_scale=1.0):
    """Statistics of one utterance: ``N (C,)`` and centred ``F (C, D)``, float32."""
    return StatsComputer(ubm, num_gselect, min_post, posterior_scale)(X)


def _stats_chunk(utts, loader, computer, second_order=False):
    with threadpool_limits(limits=1, user_api="blas"):  # per-utterance products are small
        return stats_of(utts, loader, computer, second_order)


def stats_of(utts, loader, computer, second_order=False):
    """``N (n, C)``, ``F (n, C, D)`` float32 of ``utts`` and, with ``second_order``, their summed S (float64)."""
    N = np.empty((len(utts), computer.num_gauss), np.float32)
    F = np.empty((len(utts), computer.num_gauss, computer.dim), np.float32)
    S = None
    for i, utt in enumerate(utts):
        N[i], F[i], Su = computer.with_second_order(loader(utt), utt,
                                                    second_order)
        if second_order:
            S = Su if S is None else S + Su
    if not second_order:
        return N, F
    if S is None:
        S = np.zeros((computer.num_gauss,) + (computer.dim,) * (2 if computer.full else 1))
    return N, F, S


def stats_options(stored=None, **given):
    """The statistics options: each of :data:`STATS_DEFAULTS` from ``given`` unless None, else from
    ``stored`` (e.g. the options an extractor was trained with), else the default."""
    stored = stored or {}
    return {k: given[k] if given.get(k) is not None else stored.get(k, d) for k, d in STATS_DEFAULTS.items()}


def accumulate_stats(ubm, loader, utt_ids=None, config=SERIAL, num_gselect=20, min_post=0.025,
                     posterior_scale=1.0, second_order=False):
    """Per-utterance statistics of many utterances, in parallel, reading one utterance at a time.

    ubm : FullGMM (full-covariance posteriors) or DiagGMM (diagonal posteriors).
    loader : a frame source (:mod:`spkrec.io.frames`, e.g. ``FeatureLoader``) or a mapping ``utt -> (T, D)``.
    utt_ids : utterances (default ``loader.utt_ids`` or the mapping's keys).
    second_order : also return the total second-order statistics S of all utterances (float64, summed
        per chunk then over chunks in a fixed order: the same for any ``nj``), see ``StatsComputer.second_order``.
    Returns ``N (n, C) float32, F (n, C, D) float32`` in the order of ``utt_ids`` (and ``S``).
    """
    loader, utt_ids = frame_source(loader, utt_ids)
    computer = StatsComputer(ubm, num_gselect, min_post, posterior_scale, config)
    if not utt_ids:
        empty = np.zeros((0, computer.num_gauss), np.float32), np.zeros((0, computer.num_gauss, computer.dim),
                                                                          np.float32)
        return empty + (stats_of([], loader, computer, True)[2],) if second_order else empty
    parts = map_chunks(_stats_chunk, utt_ids, config, desc="Baum-Welch statistics", loader=loader,
                       computer=computer, max_chunks=max(1, min(NUM_CHUNKS, len(utt_ids) // MIN_CHUNK_UTTS)),
                       second_order=bool(second_order))
    N, F = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if not second_order:
        return N, F
    S = parts[0][2].copy()
    for p in parts[1:]:
        S += p[2]
    return N, F, S


def pool_stats(N, F, keys, groups):
    """Sum statistics within groups (e.g. speaker-pooled segments for training T).

    keys : ids of the rows of N/F; groups : mapping ``group -> list of keys``.
    Returns ``(group ids, N (g, C), F (g, C, D))``; groups with no known key are skipped.
    """
    row = {k: i for i, k in enumerate(keys)}
    ids, Ns, Fs = [], [], []
    for g, members in groups.items():
        idx = [row[k] for k in members if k in row]
        if idx:
            ids.append(g)
            Ns.append(N[idx].sum(0, dtype=np.float64))
            Fs.append(F[idx].sum(0, dtype=np.float64))
    C, D = F.shape[1:]
    if not ids:
        return [], np.zeros((0, C), np.float32), np.zeros((0, C, D), np.float32)
    return ids, np.asarray(Ns, np.float32), np.asarray(Fs, np.float32)
