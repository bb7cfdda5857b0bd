"""Feature normalisation: utterance CMVN, Kaldi sliding-window CMVN, and feature warping."""
import numpy as np
from scipy.special import ndtri


def _as_matrix(feats, what):
    feats = np.asarray(feats)
    if feats.ndim != 2:
        raise ValueError(f"{what} expects a (frames, dims) matrix, got shape {feats.shape}")
    return feats


def cmvn(feats, norm_vars=False):
    """Utterance-level mean (and variance) normalisation, Kaldi ``apply-cmvn`` on per-utterance stats.

    ``(T, D) -> (T, D)`` float32. Statistics in float64; the variance is floored at 1e-20 as in Kaldi.
    """
    x = _as_matrix(feats, "cmvn").astype(np.float64)
    if x.shape[0] == 0:
        return x.astype(np.float32)
    mean = x.mean(axis=0)
    out = x - mean
    if norm_vars:
        var = np.maximum(np.mean(x * x, axis=0) - mean * mean, 1e-20)
        out /= np.sqrt(var)
    return out.astype(np.float32)


def sliding_windows(num_frames, window=600, center=True, min_window=100):
    """Start and end (exclusive) frame of each frame's normalisation window, as Kaldi places them.

    centre: ``[t - window//2, t - window//2 + window)``; otherwise ``[t - window, t]`` (inclusive of t).
    A window starting before frame 0 is shifted right; a non-centred one then ends at
    ``max(t + 1, min_window)`` (so the first frames use at least ``min_window`` frames of look-ahead);
    a window ending past the last frame is shifted left and clipped at 0.
    Returns two ``(T,)`` int64 arrays.
    """
    if window <= 0:
        raise ValueError(f"window must be > 0 frames, got {window}")
    t = np.arange(num_frames, dtype=np.int64)
    if center:
        start = t - window // 2
        end = start + window
    else:
        start = t - window
        end = t + 1
    shift = np.minimum(start, 0)
    end = end - shift
    start = start - shift
    if not center:
        end = np.maximum(t + 1, min_window)  # end > t always holds here
    over = np.maximum(end - num_frames, 0)
    start = np.maximum(start - over, 0)
    end = end - over
    return start, end


def sliding_cmvn(feats, window=600, center=True, min_window=100, norm_vars=False):
    """Sliding-window mean (and variance) normalisation, Kaldi ``apply-cmvn-sliding`` semantics.

    ``window`` is ``--cmn-window`` (frames), ``center``/``min_window``/``norm_vars`` as in Kaldi; windows
    are placed by :func:`sliding_windows`. With ``norm_vars`` the window variance is floored at 1e-10 and
    a one-frame window gives 0. Sums are float64 cumulative sums; returns ``(T, D)`` float32.
    """
    x = _as_matrix(feats, "sliding_cmvn").astype(np.float64)
    T, D = x.shape
    if T == 0:
        return x.astype(np.float32)
    start, end = sliding_windows(T, window, center, min_window)
    n = (end - start).astype(np.float64)[:, None]
    csum = np.zeros((T + 1, D))
    np.cumsum(x, axis=0, out=csum[1:])
    total = csum[end] - csum[start]
    out = x - total / n
    if norm_vars:
        csq = np.zeros((T + 1, D))
        np.cumsum(x * x, axis=0, out=csq[1:])
        var = (csq[end] - csq[start]) / n - (total / n) ** 2
        out *= np.maximum(var, 1e-10) ** -0.5
        out[n[:, 0] == 1] = 0.0
    return out.astype(np.float32)


def feature_warping(feats, window=301, block_frames=256):
    """Short-time Gaussianisation (Pelecanos & Sridharan 2001): ``(T, D) -> (T, D)`` float32.

    For each frame t and dimension d, the value's rank among the ``N`` values of the window of
    ``window`` frames centred on t (``window // 2`` frames either side; **at the utterance edges the
    window shrinks** to the frames that exist, so ``N <= window``) is mapped through the inverse
    standard normal CDF: ``warped = Phi^-1((r - 1/2) / N)`` with ``r`` the mid-rank
    (``1 + #smaller + #ties/2``, ties excluding the frame itself). 301 frames = 3 s at a 10 ms shift.
    Memory is bounded by processing ``block_frames`` frames at a time.
    """
    x = _as_matrix(feats, "feature_warping").astype(np.float32)
    T, D = x.shape
    if window < 1:
        raise ValueError(f"window must be >= 1 frame, got {window}")
    out = np.empty((T, D), dtype=np.float32)
    if T == 0:
        return out
    half = window // 2
    left, right = half, window - 1 - half
    padded = np.full((T + left + right, D), np.nan, dtype=np.float32)
    padded[left:left + T] = x
    views = np.lib.stride_tricks.sliding_window_view(padded, left + right + 1, axis=0)  # (T, D, W)
    t = np.arange(T)
    count = (np.minimum(t + right + 1, T) - np.maximum(t - left, 0)).astype(np.float64)[:, None]
    for b in range(0, T, block_frames):
        win = views[b:b + block_frames]
        centre = x[b:b + block_frames, :, None]
        smaller = np.count_nonzero(win < centre, axis=2)
        ties = np.count_nonzero(win == centre, axis=2) - 1
        rank = 1.0 + smaller + 0.5 * ties
        out[b:b + block_frames] = ndtri((rank - 0.5) / count[b:b + block_frames])
    return out
