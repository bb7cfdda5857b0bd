"""Speech regions from frame VAD decisions, and uniform windows over them (in frames)."""
import numpy as np


def runs(mask):
    """``[(start, end)]`` frame index ranges (end exclusive) where the boolean ``mask`` is true."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(np.diff(m.astype(np.int8)))
    return list(zip(d[0::2].tolist(), d[1::2].tolist()))


def speech_regions(voiced, min_gap=30, min_speech=20):
    """Smooth VAD decisions into regions: bridge pauses shorter than ``min_gap`` frames, then drop regions
    shorter than ``min_speech`` frames. -> ``[(start, end)]``."""
    regions = runs(voiced)
    merged = []
    for s, e in regions:
        if merged and s - merged[-1][1] < min_gap:
            merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return [(s, e) for s, e in merged if e - s >= min_speech]


def uniform_windows(regions, window=150, shift=75, min_window=None):
    """Windows of ``window`` frames every ``shift`` frames inside each region; a region's last window ends
    at the region's end; a region shorter than ``window`` is one window (if at least ``min_window``,
    default ``shift // 2``, frames). -> ``[(start, end)]``."""
    min_window = shift // 2 if min_window is None else min_window
    out = []
    for s, e in regions:
        n = e - s
        if n < window:
            if n >= min_window:
                out.append((s, e))
            continue
        starts = list(range(s, e - window + 1, shift))
        if starts[-1] + window < e:
            starts.append(e - window)
        out += [(t, t + window) for t in starts]
    return out
