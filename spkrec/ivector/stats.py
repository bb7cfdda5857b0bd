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

from spkrec.ivector.full_ubm import (FullGMM, _as_frames, _Quadratic, diag_log_likelihoods, diag_loglik_weights,
                                     gaussian_params, masked_to_selection, softmax_rows, top_gaussians)
from spkrec.parallel import NUM_CHUNKS, SERIAL, SharedArrays, map_chunks

MIN_CHUNK_UTTS = 16  # utterances per chunk at least (results are per utterance: chunking changes nothing)


class StatsComputer:
    """Picklable per-utterance statistics computer for one UBM (coefficients precomputed once)."""

    def __init__(self, ubm, num_gselect=20, min_post=0.025, posterior_scale=1.0, config=SERIAL):
        weights, means, cov = gaussian_params(ubm)
        self.full = cov.ndim == 3
        variances = np.diagonal(cov, axis1=1, axis2=2) if self.full else cov
        self.center = (weights @ means).astype(np.float32)
        self.means_c = (means - weights @ means).astype(np.float32)
        self.gselect_w = diag_loglik_weights(weights, means, variances, weights @ means)
        if self.full:
            model = ubm if isinstance(ubm, FullGMM) else FullGMM.from_params(weights, means, cov)
            W, center, _ = model._coefficients()
            assert np.allclose(center, weights @ means)
            self._shared = SharedArrays(dict(full_w=W), config)  # (P+D+1, C): sent once per worker
            self.quad = _Quadratic(means.shape[1])
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
        Xc = _as_frames(X, self.dim) - self.center
        return self._posteriors(Xc)

    def _posteriors(self, Xc):
        diag_ll = diag_log_likelihoods(Xc, self.gselect_w)
        sel = top_gaussians(diag_ll, self.num_gselect)
        if self.full:
            D = self.dim
            P = self.full_w.shape[0] - D - 1
            ll = self.quad.features(Xc) @ self.full_w[:P] + Xc @ self.full_w[P:P + D] + self.full_w[-1]
        else:
            ll = diag_ll
        post, _ = softmax_rows(masked_to_selection(ll, sel))
        if self.min_post > 0:
            keep = post >= self.min_post
            keep[np.arange(len(post)), post.argmax(1)] = True
            post = np.where(keep, post, 0.0).astype(np.float32)
            post /= post.sum(1, keepdims=True)
        return post

    def __call__(self, X, name=None):
        """``(N (C,), F (C, D))`` float32 statistics of one utterance's frames X (T, D)."""
        Xc = _as_frames(X, self.dim, name) - self.center
        if len(Xc) == 0:
            return np.zeros(self.num_gauss, np.float32), np.zeros((self.num_gauss, self.dim), np.float32)
        post = self._posteriors(Xc)
        if self.posterior_scale != 1.0:
            post *= self.posterior_scale
        N = post.sum(0, dtype=np.float64)
        F = post.T @ Xc - N[:, None].astype(np.float32) * self.means_c
        return N.astype(np.float32), F


def utterance_stats(ubm, X, num_gselect=20, min_post=0.025, posterior_scale=1.0):
    """Statistics of one utterance: ``N (C,)`` and centred ``F (C, D)``, float32."""
    return StatsComputer(ubm, num_gselect, min_post, posterior_scale)(X)


def _stats_chunk(utts, loader, computer):
    with threadpool_limits(limits=1, user_api="blas"):  # per-utterance products are small
        return _stats_of(utts, loader, computer)


def _stats_of(utts, loader, computer):
    N = np.empty((len(utts), computer.num_gauss), np.float32)
    F = np.empty((len(utts), computer.num_gauss, computer.dim), np.float32)
    for i, utt in enumerate(utts):
        N[i], F[i] = computer(loader(utt) if callable(loader) else loader[utt], utt)
    return N, F


def loader_utt_ids(loader, utt_ids=None):
    """``utt_ids`` as a list, by default ``loader.utt_ids`` or the keys of a mapping loader."""
    if utt_ids is None:
        utt_ids = getattr(loader, "utt_ids", None) or list(loader.keys())
    return list(utt_ids)


def accumulate_stats(ubm, loader, utt_ids=None, config=SERIAL, num_gselect=20, min_post=0.025,
                     posterior_scale=1.0):
    """Per-utterance statistics of many utterances, in parallel, reading one utterance at a time.

    ubm : FullGMM (full-covariance posteriors) or DiagGMM (diagonal posteriors).
    loader : picklable callable (e.g. ``FeatureLoader``) or mapping ``utt -> (T, D)`` frames.
    utt_ids : utterances (default ``loader.utt_ids`` or the mapping's keys).
    Returns ``N (n, C) float32, F (n, C, D) float32`` in the order of ``utt_ids``.
    """
    utt_ids = loader_utt_ids(loader, utt_ids)
    computer = StatsComputer(ubm, num_gselect, min_post, posterior_scale, config)
    if not utt_ids:
        return np.zeros((0, computer.num_gauss), np.float32), np.zeros((0, computer.num_gauss, computer.dim),
                                                                         np.float32)
    parts = map_chunks(_stats_chunk, utt_ids, config, desc="Baum-Welch statistics", loader=loader,
                       computer=computer, max_chunks=max(1, min(NUM_CHUNKS, len(utt_ids) // MIN_CHUNK_UTTS)))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


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
