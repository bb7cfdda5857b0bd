"""EM for diagonal GMMs: statistics over utterances in parallel, M-step with floors, splitting init.

Statistics are computed per fixed *block* of consecutive utterances (at most ``MAX_BLOCKS`` blocks,
independent of the number of jobs) and summed in block order, so results are bit-identical for any
``--nj`` and backend.
"""
import logging
import math

import numpy as np

from spkrec.gmm.estep import GmmStats, PackedGMM, accumulate
from spkrec.parallel import SERIAL, map_chunks

log = logging.getLogger("spkrec")

MAX_BLOCKS = 64
SPLIT_PERTURB = 0.2  # split means by +- 0.2 standard deviations (HTK HHEd "MU")


class ArrayLoader:
    """Picklable ``loader(key) -> (T, D)`` over an in-memory array cut into pieces of ``piece`` frames."""

    def __init__(self, X, piece=50000):
        self.X = X
        self.piece = int(piece)
        self.utt_ids = [str(i) for i in range(max(1, math.ceil(len(X) / self.piece)))]

    def __call__(self, key):
        i = int(key)
        return self.X[i * self.piece:(i + 1) * self.piece]


def utterance_blocks(utt_ids, max_blocks=MAX_BLOCKS):
    """Split utterance ids into at most ``max_blocks`` contiguous blocks (fixed for a given list)."""
    utt_ids = list(utt_ids)
    size = max(1, math.ceil(len(utt_ids) / max_blocks))
    return [utt_ids[i:i + size] for i in range(0, len(utt_ids), size)]


def _frames(loader, utt, subsample):
    X = np.asarray(loader(utt))
    if X.ndim != 2:
        from spkrec.errors import SpkrecError
        raise SpkrecError(f"utterance {utt}: features must be a (frames, dim) matrix, got shape {X.shape}")
    return X[::subsample] if subsample > 1 else X


def _block_stats(blocks, loader, packed, subsample, chunk_frames):
    """Worker: one :class:`GmmStats` per block; frames of a block are processed ``chunk_frames`` at a time."""
    out = []
    for block in blocks:
        stats = GmmStats.zeros(packed.num_gauss, packed.dim)
        pending, count = [], 0
        for utt in block:
            X = _frames(loader, utt, subsample)
            pending.append(X)
            count += len(X)
            if count >= chunk_frames:
                X = pending[0] if len(pending) == 1 else np.concatenate(pending)
                full = count - count % chunk_frames
                for start in range(0, full, chunk_frames):
                    accumulate(packed, X[start:start + chunk_frames], stats)
                pending, count = [X[full:]], count - full
        if count:
            accumulate(packed, pending[0] if len(pending) == 1 else np.concatenate(pending), stats)
        out.append(stats)
    return out


def collect_stats(weights, means, variances, loader, utt_ids, config=SERIAL, subsample=1,
                  chunk_frames=50000, desc=None):
    """Total :class:`GmmStats` of all utterances (deterministic for any ``config``)."""
    packed = PackedGMM(weights, means, variances)
    blocks = utterance_blocks(utt_ids)
    per_chunk = map_chunks(_block_stats, blocks, config, desc=desc, loader=loader, packed=packed,
                           subsample=subsample, chunk_frames=chunk_frames)
    total = GmmStats.zeros(packed.num_gauss, packed.dim)
    for chunk_results in per_chunk:
        for stats in chunk_results:
            total += stats
    return total


def _global_block(blocks, loader, subsample):
    out = []
    for block in blocks:
        n, s1, s2 = 0, 0.0, 0.0
        for utt in block:
            X = _frames(loader, utt, subsample).astype(np.float64)
            if not np.isfinite(X).all():
                from spkrec.errors import SpkrecError
                t, d = np.argwhere(~np.isfinite(X))[0]
                raise SpkrecError(f"utterance {utt}: features contain {X[t, d]} at frame {t} (dim {d}); "
                                  "recompute them from valid audio")
            n += len(X)
            s1 = s1 + X.sum(axis=0)
            s2 = s2 + (X * X).sum(axis=0)
        out.append((n, s1, s2))
    return out


def global_mean_var(loader, utt_ids, config=SERIAL, subsample=1):
    """Global mean and variance (float64) of all frames, and the number of frames."""
    n, s1, s2 = 0, 0.0, 0.0
    for chunk_results in map_chunks(_global_block, utterance_blocks(utt_ids), config,
                                    loader=loader, subsample=subsample):
        for bn, b1, b2 in chunk_results:
            n, s1, s2 = n + bn, s1 + b1, s2 + b2
    if n == 0:
        from spkrec.errors import SpkrecError
        raise SpkrecError("no feature frames to train on; check feats.scp and vad.scp (all frames unvoiced?)")
    mean = s1 / n
    return mean, np.maximum(s2 / n - mean * mean, 1e-10), n


def mle_update(stats, weights, means, variances, var_floor, weight_floor, min_gauss_frames, return_floored=False):
    """M-step: new ``(weights, means, variances, dead)`` from ``stats`` (float64).

    Gaussians with occupancy below ``min_gauss_frames`` keep their mean and variance (they are
    reported as dead); variances are floored at ``var_floor`` (D,), weights at ``weight_floor``.
    With ``return_floored`` the number of variances raised to the floor is appended to the result.
    """
    N = stats.occupancy
    weights = np.maximum(N / N.sum(), weight_floor)
    weights /= weights.sum()
    alive = (N >= min_gauss_frames) & (N > 0)
    means = means.copy()
    variances = variances.copy()
    Na = N[alive, None]
    means[alive] = stats.first[alive] / Na
    variances[alive] = stats.second[alive] / Na - means[alive] ** 2
    floored = int(np.count_nonzero(variances[alive] < var_floor))
    variances = np.maximum(variances, var_floor)
    dead = np.flatnonzero(~alive)
    return (weights, means, variances, dead, floored) if return_floored else (weights, means, variances, dead)


def split_gaussians(weights, means, variances, target):
    """Split the heaviest Gaussians until there are ``target``: means +- 0.2 sigma, weights halved."""
    weights, means, variances = weights.copy(), means.copy(), variances.copy()
    while len(weights) < target:
        k = min(target - len(weights), len(weights))
        heavy = np.argsort(-weights, kind="stable")[:k]
        offset = SPLIT_PERTURB * np.sqrt(variances[heavy])
        weights[heavy] *= 0.5
        new_means = means[heavy] + offset
        means[heavy] -= offset
        weights = np.concatenate([weights, weights[heavy]])
        means = np.concatenate([means, new_means])
        variances = np.concatenate([variances, variances[heavy]])
    return weights, means, variances


def resplit_dead(weights, means, variances, dead):
    """Replace each dead Gaussian by half of the currently heaviest one (split +- 0.2 sigma)."""
    weights, means, variances = weights.copy(), means.copy(), variances.copy()
    for c in dead:
        h = int(np.argmax(weights))
        offset = SPLIT_PERTURB * np.sqrt(variances[h])
        weights[h] *= 0.5
        weights[c] = weights[h]
        means[c] = means[h] + offset
        means[h] = means[h] - offset
        variances[c] = variances[h]
    return weights / weights.sum(), means, variances
