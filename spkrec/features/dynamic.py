"""Delta (time-derivative) features with Kaldi ``add-deltas`` semantics."""
import numpy as np


def delta_filters(order=2, window=2):
    """Filters of Kaldi's ``DeltaFeatures``: one per order 0..``order``, each of length ``2*order*window + 1``.

    Order 0 is the identity; order ``i`` convolves order ``i-1`` with the regression filter
    ``[-window .. window] / sum(j**2)``. Returns an array of shape ``(order + 1, 2*order*window + 1)``
    centred on the middle column.
    """
    if order < 0 or window < 1:
        raise ValueError(f"deltas need order >= 0 and window >= 1, got order={order}, window={window}")
    regression = np.arange(-window, window + 1, dtype=np.float64)
    regression /= np.sum(regression ** 2)
    width = 2 * order * window + 1
    filters = np.zeros((order + 1, width))
    current = np.ones(1)
    for i in range(order + 1):
        if i > 0:
            current = np.convolve(current, regression)  # symmetric length grows by 2*window
        pad = (width - current.size) // 2
        filters[i, pad:pad + current.size] = current
    return filters


def deltas(feats, order=2, window=2):
    """Append delta features: ``(T, D) -> (T, D * (order + 1))`` float32, ``[x, dx, ddx, ...]``.

    Kaldi ``add-deltas --delta-order=order --delta-window=window``: the order-``i`` block is the
    order-``i`` regression filter (the first-order filter ``sum_j j*x[t+j] / sum_j j**2``, ``j = -window..window``,
    composed with itself ``i`` times) applied to the input, with frame indices clamped to ``[0, T-1]``
    (edge frames replicated).
    """
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2:
        raise ValueError(f"deltas expects a (frames, dims) matrix, got shape {feats.shape}")
    T, D = feats.shape
    filters = delta_filters(order, window).astype(np.float32)
    half = order * window
    out = np.zeros((T, D * (order + 1)), dtype=np.float32)
    if T == 0:
        return out
    idx = np.clip(np.arange(-half, T + half), 0, T - 1)
    padded = feats[idx]  # (T + 2*half, D), edges replicated
    out[:, :D] = feats
    for i in range(1, order + 1):
        block = out[:, i * D:(i + 1) * D]
        for k, scale in enumerate(filters[i]):
            if scale != 0.0:
                block += scale * padded[k:k + T]
    return out
