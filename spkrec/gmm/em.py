"""EM for diagonal GMMs: statistics over utterances in parallel, M-step with floors, splitting init.

Statistics are computed per fixed *block* of consecutive utterances (at most ``MAX_BLOCKS`` blocks,
independent of the number of jobs) and summed in block order, so results are bit-identical for any
``--nj`` and backend.
"""
import logging
import math

import numpy as np

from spkrec.gmm.core import GmmStats, PackedGMM, accumulate
from spkrec.parallel import SERIAL, iter_chunks, map_chunks

log = logging.getLogger("spkrec")

MAX_BLOCKS = 64
SPLIT_PERTURB = 0.2  # split means by +- 0.2 standard deviations (HTK HHEd "MU")


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


def _balanced_groups(sizes, num_groups):
    """Contiguous groups of block indices with about equal numbers of frames (at most ``num_groups``)."""
    total = float(sum(sizes)) or 1.0
    bounds, acc = [0], 0
    for i, n in enumerate(sizes):
        acc += n
        if len(bounds) < num_groups and acc >= total * len(bounds) / num_groups and i + 1 < len(sizes):
            bounds.append(i + 1)
    bounds.append(len(sizes))
    return [list(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def _cached_block_stats(groups, shared, packed, chunk_frames):
    """Worker: :func:`_block_stats` on blocks kept in memory (:class:`BlockFrames`), the same pieces;
    the blocks' statistics stacked in three arrays (one transfer instead of three per block: 30 ms less
    per iteration at 128 Gaussians with 2 workers)."""
    names = [f"b{i}" for group in groups for i in group]
    C, D = packed.num_gauss, packed.dim
    acc = np.empty((len(names), C, 2 * D + 1))
    loglik, frames = np.empty(len(names)), np.empty(len(names), np.int64)
    for i, name in enumerate(names):
        X = shared[name]
        stats = GmmStats(acc[i, :, 0], acc[i, :, 1:D + 1], acc[i, :, D + 1:], 0.0, 0)
        acc[i] = 0.0
        for start in range(0, len(X), chunk_frames):
            accumulate(packed, X[start:start + chunk_frames], stats)
        loglik[i], frames[i] = stats.loglik, stats.num_frames
    return acc, loglik, frames


def _unstack_stats(acc, loglik, frames):
    D = (acc.shape[2] - 1) // 2
    return [GmmStats(a[:, 0], a[:, 1:D + 1], a[:, D + 1:], float(ll), int(n)) for a, ll, n in zip(acc, loglik, frames)]


def collect_stats(weights, means, variances, loader, utt_ids, config=SERIAL, subsample=1,
                  chunk_frames=50000, desc=None, frames=None):
    """Total :class:`GmmStats` of all utterances (deterministic for any ``config``).

    ``frames``: the :class:`BlockFrames` of ``utt_ids`` (from :func:`load_frames`) to use instead of
    ``loader``; the numbers are the same. Its blocks go to the workers in ``nj`` tasks of about equal
    numbers of frames (per-block statistics are still summed in block order, so the grouping does not
    change them).
    """
    packed = PackedGMM(weights, means, variances)
    if frames is not None:
        groups = _balanced_groups(frames.sizes, max(1, int(config.nj)))
        per_chunk = [_unstack_stats(*r) for r in
                     map_chunks(_cached_block_stats, groups, config, desc=desc, max_chunks=len(groups),
                                shared=frames.shared, packed=packed, chunk_frames=chunk_frames)]
    else:
        per_chunk = map_chunks(_block_stats, utterance_blocks(utt_ids), config, desc=desc, loader=loader,
                               packed=packed, subsample=subsample, chunk_frames=chunk_frames)
    total = GmmStats.zeros(packed.num_gauss, packed.dim)
    for chunk_results in per_chunk:
        for stats in chunk_results:
            total += stats
    return total


# ---------------------------------------------------------------------- frames kept in memory across iterations
FRAME_CACHE_BYTES = 1 << 30
"""Default bound of :func:`load_frames` (1 GiB; ``$SPKREC_FRAME_CACHE_MB`` overrides, 0 disables)."""


def frame_cache_bytes():
    """The memory bound on frames kept across EM iterations: ``$SPKREC_FRAME_CACHE_MB`` MiB, else 1 GiB."""
    import os
    value = os.environ.get("SPKREC_FRAME_CACHE_MB", "").strip()
    if not value:
        return FRAME_CACHE_BYTES
    try:
        if float(value) >= 0:
            return int(float(value) * (1 << 20))
    except ValueError:
        pass
    from spkrec.errors import SpkrecError
    raise SpkrecError(f"SPKREC_FRAME_CACHE_MB={value!r}: expected a size in MiB >= 0; fix or unset it")


class BlockFrames:
    """The frames of each utterance block (:func:`utterance_blocks`, after subsampling), loaded once.

    EM then reads no features and repeats no post-processing (deltas, CMVN, VAD): 0.5 s of a 0.6 s
    iteration on so762-mini. In this process (``nj == 1``) the arrays are used as they are; local workers
    memory-map them from one shared folder (:class:`~spkrec.parallel.SharedArrays`). Dask workers may be
    on other machines, so the Dask backend streams from the loader instead (same numbers: a block's
    frames are cut into the same ``chunk_frames`` pieces either way).
    """

    def __init__(self, frames, config=SERIAL):
        from spkrec.parallel import SharedArrays
        self.num_blocks = len(frames)
        self.sizes = [len(x) for x in frames]
        self.nbytes = sum(x.nbytes for x in frames)
        self.shared = SharedArrays({f"b{i}": x for i, x in enumerate(frames)}, config, mapped=True)


def _check_finite(X, utt):
    """SpkrecError naming the utterance, frame and dimension of the first NaN/inf in X (T, D)."""
    if not np.isfinite(X).all():
        from spkrec.errors import SpkrecError
        t, d = np.argwhere(~np.isfinite(X))[0]
        raise SpkrecError(f"utterance {utt}: features contain {X[t, d]} at frame {t} (dim {d}); "
                          "recompute them from valid audio")


def _load_block(blocks, loader, subsample, keep):
    """Worker: ``(n, s1, s2, frames or None)`` per block; the sums exactly as :func:`_global_block`."""
    out = []
    for block in blocks:
        n, s1, s2, parts = 0, 0.0, 0.0, []
        for utt in block:
            X = _frames(loader, utt, subsample)
            _check_finite(X, utt)
            if keep:
                parts.append(X)
            X = X.astype(np.float64)
            n += len(X)
            s1 = s1 + X.sum(axis=0)
            s2 = s2 + (X * X).sum(axis=0)
        frames = None
        if keep and parts:
            frames = np.ascontiguousarray(parts[0]) if len(parts) == 1 else np.concatenate(parts)
        out.append((n, s1, s2, frames))
    return out


def load_frames(loader, utt_ids, config=SERIAL, subsample=1, max_bytes=None):
    """One pass over the utterances: ``(mean, var, n, frames)`` where ``(mean, var, n)`` are
    :func:`global_mean_var`'s numbers and ``frames`` a :class:`BlockFrames` when all frames fit in
    ``max_bytes`` (default :func:`frame_cache_bytes`), else ``None`` (EM then streams from ``loader``).

    Not kept with the Dask backend (see :class:`BlockFrames`). Peak memory: about ``max_bytes`` plus
    the chunks in flight.
    """
    max_bytes = frame_cache_bytes() if max_bytes is None else int(max_bytes)
    keep = max_bytes > 0 and config.backend != "dask"
    n, s1, s2, frames, nbytes = 0, 0.0, 0.0, [], 0
    for chunk_results in iter_chunks(_load_block, utterance_blocks(utt_ids), config, loader=loader,
                                     subsample=subsample, keep=keep):
        for bn, b1, b2, X in chunk_results:
            n, s1, s2 = n + bn, s1 + b1, s2 + b2
            if keep:
                frames.append(X if X is not None else np.zeros((0, len(b1)), np.float32))
                nbytes += frames[-1].nbytes
                if nbytes > max_bytes:
                    log.info("EM: frames exceed %.0f MiB (SPKREC_FRAME_CACHE_MB); streaming them from the "
                             "features every iteration", max_bytes / (1 << 20))
                    keep, frames = False, []
    mean, var = _mean_var(n, s1, s2)
    return mean, var, n, (BlockFrames(frames, config) if keep else None)


def _global_block(blocks, loader, subsample):
    out = []
    for block in blocks:
        n, s1, s2 = 0, 0.0, 0.0
        for utt in block:
            X = _frames(loader, utt, subsample).astype(np.float64)
            _check_finite(X, utt)
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
    mean, var = _mean_var(n, s1, s2)
    return mean, var, n


def _mean_var(n, s1, s2):
    if n == 0:
        from spkrec.errors import SpkrecError
        raise SpkrecError("no feature frames to train on; check feats.scp and vad.scp (all frames unvoiced?)")
    mean = s1 / n
    return mean, np.maximum(s2 / n - mean * mean, 1e-10)


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
