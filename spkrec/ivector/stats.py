"""Baum-Welch statistics for i-vectors: zeroth order N (C,) and first order F (C, D) centred on the
UBM means, from posteriors pruned as Kaldi's ``extract_ivectors.sh`` does.

Posteriors come from the UBM passed in (full covariance for a :class:`FullGMM`, diagonal for a
``DiagGMM``), restricted per frame to the ``num_gselect`` best Gaussians of the diagonal UBM (for a
full UBM, its diagonal: ``fgmm-global-to-gmm``), renormalised, then entries below ``min_post`` are
dropped and the rest renormalised (``fgmm-global-gselect-to-post --min-post``; the best Gaussian is
always kept). ``posterior_scale`` multiplies N and F (Kaldi ``scale-post``).

Only the selected (frame, Gaussian) pairs get a full-covariance log-likelihood
(:func:`spkrec.gmm.core.selected_full_loglik`): the pairs of a block of utterances (:data:`BLOCK_FRAMES`)
are grouped by Gaussian, and each group is one float32 product
``(x - mu_c) L_c^-T`` with the inverse Cholesky factor of ``Sigma_c``; ``num_gselect`` of C Gaussians
instead of all of them (20 of 512: an eighth of the FLOPs of the statistics). A row's result does not
depend on the other rows of its product (each has at least two rows: never a matrix-vector product),
so an utterance's statistics are the same whatever block it is computed in. N and F come from
the sparse pruned posteriors (one sparse product per block), never a dense (frames, C) array.
"""
import numpy as np
import scipy.sparse
from threadpoolctl import threadpool_limits

from spkrec.gmm.core import (as_frames, centred_stats, diag_coefficients, diag_loglik, full_factors, gaussian_params,
                             posteriors, selected_full_loglik, top_k)
from spkrec.io.frames import frame_source
from spkrec.parallel import NUM_CHUNKS, SERIAL, SharedArrays, map_chunks

STATS_DEFAULTS = {"num_gselect": 20, "min_post": 0.025, "posterior_scale": 1.0}
"""Defaults of the statistics options (Kaldi's ``extract_ivectors.sh``), and of the CLI's flags."""
MIN_CHUNK_UTTS = 16  # utterances per chunk at least (results are per utterance: chunking changes nothing)
BLOCK_FRAMES = 8192
"""Utterances are read and processed together until their frames reach about this many: the selected
pairs of a block are grouped by Gaussian (bigger groups: fewer, larger products)."""


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
            factor, self.const = full_factors(weights, means, cov)
            self._shared = SharedArrays(dict(factor=factor), config)
        self.num_gselect = int(num_gselect)
        self.min_post = float(min_post)
        self.posterior_scale = float(posterior_scale)

    @property
    def factor(self):
        """(C, D, D) float32 inverse Cholesky factors, transposed: ``(x - mu_c) @ factor[c]``."""
        return self._shared["factor"]

    @property
    def num_gauss(self):
        return self.means_c.shape[0]

    @property
    def dim(self):
        return self.means_c.shape[1]

    def posteriors(self, X):
        """(T, C) float32 pruned posteriors of frames X (T, D)."""
        Xc = as_frames(X, self.dim) - self.center
        sel, post = self._selected_posteriors([Xc])
        out = np.zeros((len(Xc), self.num_gauss), np.float32)
        np.put_along_axis(out, sel, post, 1)
        return out

    def _selected_posteriors(self, Xcs):
        """``(sel (T, k), post (T, k))`` for the frames of the shifted utterances ``Xcs`` stacked: the
        selected Gaussians of each frame and their pruned posteriors (zero where pruned)."""
        sels, lls = [], []
        for Xc in Xcs:  # per utterance: the selection depends on the utterance's frames only
            diag_ll = diag_loglik(Xc, self.gselect_w)
            sel = np.ascontiguousarray(top_k(diag_ll, self.num_gselect))
            sels.append(sel)
            if not self.full:
                lls.append(np.take_along_axis(diag_ll, sel, 1))
        sel = np.concatenate(sels) if len(sels) > 1 else sels[0]
        if self.full:
            ll = selected_full_loglik(np.concatenate(Xcs) if len(Xcs) > 1 else Xcs[0], sel, self.factor,
                                      self.means_c, self.const)
        else:
            ll = np.concatenate(lls) if len(lls) > 1 else lls[0]
        post, _ = posteriors(ll)  # as over all C Gaussians with the others at -inf
        if self.min_post > 0:
            keep = post >= self.min_post
            keep[np.arange(len(post)), post.argmax(1)] = True
            post = np.where(keep, post, 0.0).astype(np.float32)
            post /= post.sum(1, keepdims=True)
        return sel, post

    def __call__(self, X, name=None):
        """``(N (C,), F (C, D))`` float32 statistics of one utterance's frames X (T, D)."""
        return self.with_second_order(X, name, False)[:2]

    def with_second_order(self, X, name=None, second_order=True):
        """``(N, F, S)`` of one utterance: N, F as ``__call__`` and the float64 second-order statistics
        centred on the UBM means like F, ``S_c = sum_t gamma_tc (x_t - m_c)(x_t - m_c)'`` ((C, D, D) for a
        full UBM, (C, D) diagonals for a diagonal one), from the same pruned, scaled posteriors
        (S is None without ``second_order``)."""
        return self.block_stats([X], [name], second_order)[0]

    def block_stats(self, frames, names=None, second_order=False):
        """``[(N, F, S), ...]`` of several utterances' frames (each (T, D)) computed together (the same
        numbers as one at a time)."""
        names = names if names is not None else [None] * len(frames)
        C, D = self.num_gauss, self.dim
        Xcs = [as_frames(X, D, name) - self.center for X, name in zip(frames, names)]
        out = [None] * len(Xcs)
        live = [i for i, Xc in enumerate(Xcs) if len(Xc)]
        for i in set(range(len(Xcs))) - set(live):
            S = np.zeros((C, D, D) if self.full else (C, D)) if second_order else None
            out[i] = np.zeros(C, np.float32), np.zeros((C, D), np.float32), S
        if not live:
            return out
        Xs = [Xcs[i] for i in live]
        sel, post = self._selected_posteriors(Xs)
        if self.posterior_scale != 1.0:
            post *= np.float32(self.posterior_scale)
        lens = np.array([len(X) for X in Xs])
        # sparse (utterance x Gaussian, frame) posteriors: rows hold their frames in time order
        k = sel.shape[1]
        utt_of_frame = np.repeat(np.arange(len(Xs)), lens)
        row = (utt_of_frame[:, None] * C + sel).ravel()
        frame = np.repeat(np.arange(len(utt_of_frame)), k)
        g = post.ravel()
        nz = g > 0
        row, frame, g = row[nz], frame[nz], g[nz]
        n = len(Xs) * C
        N = np.bincount(row, weights=g, minlength=n).reshape(len(Xs), C).astype(np.float32)
        P = scipy.sparse.csr_matrix((g, (row, frame)), shape=(n, len(utt_of_frame)))
        Fx = np.asarray(P @ (np.concatenate(Xs) if len(Xs) > 1 else Xs[0]), np.float32).reshape(len(Xs), C, D)
        Fx -= N[:, :, None] * self.means_c
        starts = np.concatenate([[0], np.cumsum(lens)[:-1]])
        for j, i in enumerate(live):
            S = None
            if second_order:  # float64, from a dense copy of the utterance's posteriors
                dense = np.zeros((lens[j], C), np.float32)
                np.put_along_axis(dense, sel[starts[j]:starts[j] + lens[j]], post[starts[j]:starts[j] + lens[j]], 1)
                S = centred_stats(dense, Xs[j], self.means_c, True, self.full)[2]
            out[i] = N[j], Fx[j], S
        return out


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
    i = 0
    while i < len(utts):  # blocks of about BLOCK_FRAMES frames
        frames, names = [], []
        total = 0
        while i + len(frames) < len(utts) and (not frames or total < BLOCK_FRAMES):
            utt = utts[i + len(frames)]
            frames.append(loader(utt))
            names.append(utt)
            total += len(frames[-1])
        for j, (n, f, Su) in enumerate(computer.block_stats(frames, names, second_order)):
            N[i + j], F[i + j] = n, f
            if second_order:  # summed in utterance order, as one at a time
                S = Su if S is None else S + Su
        i += len(frames)
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
