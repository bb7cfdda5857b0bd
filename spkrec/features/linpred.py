"""Linear prediction: autocorrelation method, Levinson-Durbin, LPC and LPC cepstra (LPCC).

Conventions (shared with :mod:`spkrec.features.perceptual`):

- Predictor polynomial ``A(z) = 1 + sum_{k=1..p} a_k z^-k``; the all-pole model of a frame's power
  spectrum is ``err / |A(e^jw)|^2`` where ``err`` is the prediction-error power (the *gain*,
  Makhoul's ``G^2``).  The prediction of ``x[n]`` is ``-sum_k a_k x[n-k]``.
- Cepstra: ``c_0 = log(gain) = log(err)`` and ``c_n`` (n >= 1) is the cepstrum of ``log(1/A(z))``
  (HTK's and rastamat's ``lpc2cep`` convention), continued beyond ``p`` when ``num_ceps > p + 1``.
- Logs are floored at ``FLT_EPSILON`` (Kaldi's floor), so silent frames give finite values.

Everything is vectorised over frames: Python loops run over the model order / cepstral index only.
"""

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.features.framing import FLOAT_EPS, FrameProcessor, scratch

# A stage whose remaining error falls below this fraction of r[0] is numerically singular
# (perfectly predictable frame); such frames keep the lower-order solution.
_SINGULAR = 1e-12


_vecdot = getattr(np, "vecdot", None)  # numpy >= 2.0: a SIMD dot per row, 2x einsum's speed


def _lag_products(frames, lag, out):
    """``out[t] = sum_n frames[t, n] frames[t, n + lag]`` for a C-contiguous float64 (T, L) array."""
    length = frames.shape[1]
    if _vecdot is not None:
        _vecdot(frames[:, lag:], frames[:, :length - lag], out=out)
    else:
        np.einsum("tn,tn->t", frames[:, lag:], frames[:, :length - lag], out=out)


def autocorrelation(frames, max_lag):
    """Autocorrelation ``r[t, k] = sum_n x[t, n] x[t, n+k]`` for lags ``0..max_lag``.

    frames : (T, L) array.  Returns (T, max_lag+1) float64 (lags >= L are zero).  Accumulated in
    float64: float32 sums move LPC coefficients of speech by up to ~0.1.
    """
    frames = np.ascontiguousarray(frames, dtype=np.float64)
    return _autocorrelation_lags(frames, max_lag).T


def _autocorrelation_lags(frames, max_lag):
    """Lag-major autocorrelation (max_lag+1, T) of a C-contiguous float64 (T, L) array."""
    num, length = frames.shape
    r = np.zeros((max_lag + 1, num), dtype=np.float64)
    for k in range(min(max_lag, length - 1) + 1):
        _lag_products(frames, k, r[k])
    return r


def levinson_durbin(r, order):
    """Solve the autocorrelation normal equations for every frame at once (Levinson-Durbin).

    Parameters
    ----------
    r : (T, K) autocorrelations with lags ``0..K-1``, ``K >= order + 1`` (extra lags are ignored);
        a 1-D array is treated as one frame.
    order : int, model order ``p``.

    Returns
    -------
    a : (T, order+1) float64, ``a[:, 0] = 1`` and ``A(z) = sum_k a[:, k] z^-k``
    err : (T,) float64, prediction-error power (``r0 * prod(1 - k_i^2)``)

    Silent frames (``r0 == 0``) give ``a = [1, 0, ..., 0]`` and ``err = 0`` (no NaN).
    """
    r = np.asarray(r, dtype=np.float64)
    single = r.ndim == 1
    if single:
        r = r[None, :]
    order = int(order)
    if r.ndim != 2 or order < 0 or r.shape[1] < order + 1:
        raise SpkrecError(f"levinson_durbin: order {order} needs autocorrelations of shape "
                          f"(T, >= {order + 1}), got {r.shape}; pass more lags or a lower order")
    a, err = _levinson_lags(np.ascontiguousarray(r[:, :order + 1].T), order)
    return (a[:, 0], err[0]) if single else (a.T, err)


def _levinson_lags(r, order):
    """Levinson-Durbin on lag-major autocorrelations ``r`` (>= order+1, T): returns lag-major
    ``a`` (order+1, T) and ``err`` (T,).  Rows are contiguous, so every step is a few SIMD passes."""
    num = r.shape[1]
    a = np.zeros((order + 1, num), dtype=np.float64)
    a[0] = 1.0
    err = r[0].copy()
    threshold = _SINGULAR * np.abs(r[0])
    k = np.empty(num, dtype=np.float64)
    for i in range(1, order + 1):
        # k_i = -(r_i + sum_{j=1}^{i-1} a_j r_{i-j}) / err; a frame whose err fell to the singular
        # threshold keeps its lower-order solution (err -> inf gives k = 0)
        np.einsum("jt,jt->t", a[1:i], r[i - 1:0:-1], out=k)
        k += r[i]
        np.divide(k, np.where(err > threshold, err, np.inf), out=k)
        np.negative(k, out=k)
        if i > 1:
            a[1:i] += k * a[i - 1:0:-1]
        a[i] = k
        err *= 1.0 - k * k
        np.maximum(err, 0.0, out=err)
    return a, err


def lpc_to_cepstrum(a, err, num_ceps):
    """Cepstra of the all-pole model ``err / |A|^2`` (T, num_ceps) float64.

    ``c_0 = log(max(err, FLT_EPSILON))``; for ``n >= 1``:
    ``c_n = -a_n - (1/n) sum_{k=1}^{n-1} k c_k a_{n-k}`` with ``a_n = 0`` for ``n > p``.
    """
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    err = np.atleast_1d(np.asarray(err, dtype=np.float64))
    num, p = a.shape[0], a.shape[1] - 1
    num_ceps = int(num_ceps)
    if num_ceps < 1:
        raise SpkrecError(f"num_ceps must be >= 1 (got {num_ceps}); ask for at least c0")
    c = np.zeros((num, num_ceps), dtype=np.float64)
    c[:, 0] = np.log(np.maximum(err, FLOAT_EPS))
    for n in range(1, num_ceps):
        c[:, n] = 0.0 - a[:, n] if n <= p else 0.0
        lo = max(1, n - p)  # terms with a_{n-k} = 0 (n - k > p) vanish
        if lo < n:
            k = np.arange(lo, n, dtype=np.float64)
            c[:, n] -= (c[:, lo:n] * a[:, n - lo:0:-1]) @ k / n
    return c


def lift_cepstra(ceps, cepstral_lifter):
    """Kaldi's sinusoidal liftering ``c_n *= 1 + L/2 sin(pi n / L)`` (in place); ``L = 0`` does nothing."""
    if cepstral_lifter:
        n = np.arange(ceps.shape[1], dtype=np.float64)
        ceps *= (1.0 + 0.5 * cepstral_lifter * np.sin(np.pi * n / cepstral_lifter)).astype(ceps.dtype)
    return ceps


def _check_order(order):
    order = int(order)
    if order < 1:
        raise SpkrecError(f"LPC order must be >= 1 (got {order}); use e.g. order=12")
    return order


def _lpc_frames(signal, sample_rate, order, framing):
    """Frames -> float64 autocorrelation lags 0..p -> Levinson-Durbin: (T, p+1) a and (T,) err."""
    proc = FrameProcessor(signal, sample_rate, **framing)
    if order >= proc.length:
        raise SpkrecError(f"LPC order {order} must be below the frame length ({proc.length} samples); "
                          "lower the order or lengthen the frames")
    frames = scratch((proc.count, proc.length), np.float64)
    proc.process(0, proc.count, frames, energy=False)
    a, err = _levinson_lags(_autocorrelation_lags(frames, order), order)
    return a.T, err


def lpc(signal, sample_rate, order=12, *, frame_length_ms=25.0, frame_shift_ms=10.0, snip_edges=True,
        dither=0.0, seed=0, remove_dc_offset=True, preemph=0.97, window="hamming"):
    """LPC features by the autocorrelation method.

    Frames (Kaldi order: dither, DC removal, pre-emphasis, window) -> autocorrelation lags 0..p ->
    Levinson-Durbin.

    Returns (T, order+1) float32: column 0 is the log gain ``log(err)`` (floored at FLT_EPSILON),
    columns 1..p are ``a_1..a_p`` of ``A(z) = 1 + sum a_k z^-k``.
    """
    order = _check_order(order)
    a, err = _lpc_frames(signal, sample_rate, order, dict(
        frame_length_ms=frame_length_ms, frame_shift_ms=frame_shift_ms, snip_edges=snip_edges, dither=dither,
        seed=seed, remove_dc_offset=remove_dc_offset, preemph=preemph, window=window))
    out = a.astype(np.float32)
    out[:, 0] = np.log(np.maximum(err, FLOAT_EPS))
    return out


def lpcc(signal, sample_rate, order=12, num_ceps=13, *, cepstral_lifter=0.0, frame_length_ms=25.0,
         frame_shift_ms=10.0, snip_edges=True, dither=0.0, seed=0, remove_dc_offset=True, preemph=0.97,
         window="hamming"):
    """LPC cepstral coefficients (T, num_ceps) float32.

    As :func:`lpc`, then the LPC-to-cepstrum recursion (:func:`lpc_to_cepstrum`): ``c_0 = log(err)``
    (the gain term), ``c_1..c_{num_ceps-1}`` continued beyond ``order`` when ``num_ceps > order + 1``;
    then optional Kaldi-style sinusoidal liftering (``cepstral_lifter``, 0 = none).
    """
    order = _check_order(order)
    a, err = _lpc_frames(signal, sample_rate, order, dict(
        frame_length_ms=frame_length_ms, frame_shift_ms=frame_shift_ms, snip_edges=snip_edges, dither=dither,
        seed=seed, remove_dc_offset=remove_dc_offset, preemph=preemph, window=window))
    return lift_cepstra(lpc_to_cepstrum(a, err, num_ceps), cepstral_lifter).astype(np.float32)


