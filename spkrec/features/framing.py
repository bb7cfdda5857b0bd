"""Framing, windowing and power spectra, vectorised over frames (Kaldi's ``feature-window.cc`` order).

Every frame is processed as Kaldi's ``ProcessWindow`` does: dither, DC-offset removal, raw log
energy, pre-emphasis, window.  Frames are strided views of the signal (no per-frame Python loop).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from spkrec.errors import SpkrecError

WINDOWS = ("povey", "hamming", "hann", "hanning", "rectangular", "blackman", "sine")
FLOAT_EPS = float(np.finfo(np.float32).eps)  # Kaldi's log floor: std::numeric_limits<float>::epsilon()


def next_pow2(n):
    """Smallest power of two >= ``n`` (``n`` >= 1)."""
    n = int(n)
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


def ms_to_samples(ms, sample_rate):
    """Samples in ``ms`` milliseconds, truncated as Kaldi's ``static_cast<int32>`` (float noise forgiven)."""
    x = float(sample_rate) * 0.001 * float(ms)
    r = round(x)
    return int(r) if abs(x - r) < 1e-6 else int(x)


def window_function(name, length, blackman_coeff=0.42):
    """Window of ``length`` samples as Kaldi's ``FeatureWindowFunction`` (float32).

    ``a = 2*pi/(L-1)``; hann ``0.5-0.5cos(a n)``; hamming ``0.54-0.46cos(a n)``; povey ``hann**0.85``;
    blackman ``c - 0.5cos(a n) + (0.5-c)cos(2a n)``; sine ``sin(a n/2)``; rectangular ones.
    """
    length = int(length)
    if name == "rectangular":
        return np.ones(length, dtype=np.float32)
    if name not in WINDOWS:
        raise SpkrecError(f"unknown window {name!r}; use one of {', '.join(WINDOWS)}")
    if length < 2:
        raise SpkrecError(f"a {name} window needs at least 2 samples (got {length}); lengthen the frame")
    n = np.arange(length, dtype=np.float64)
    a = 2.0 * np.pi / (length - 1)
    if name in ("hann", "hanning"):
        w = 0.5 - 0.5 * np.cos(a * n)
    elif name == "hamming":
        w = 0.54 - 0.46 * np.cos(a * n)
    elif name == "povey":
        w = (0.5 - 0.5 * np.cos(a * n)) ** 0.85
    elif name == "sine":
        w = np.sin(0.5 * a * n)
    else:  # blackman
        w = blackman_coeff - 0.5 * np.cos(a * n) + (0.5 - blackman_coeff) * np.cos(2.0 * a * n)
    return w.astype(np.float32)


def num_frames(num_samples, frame_length, frame_shift, snip_edges=True):
    """Number of frames as Kaldi's ``NumFrames``."""
    if snip_edges:
        return 0 if num_samples < frame_length else 1 + (num_samples - frame_length) // frame_shift
    return (num_samples + frame_shift // 2) // frame_shift


def strided_frames(signal, frame_length, frame_shift, snip_edges=True):
    """Raw frames (T, L) of a 1-D signal, without processing.

    ``snip_edges=True``: frame t starts at ``t*shift`` and only whole frames are kept.
    ``snip_edges=False``: frame t is centred at ``t*shift + shift/2``; samples outside the signal are
    reflected (``-1 -> 0``, ``N -> N-1``) as Kaldi's ``ExtractWindow``.  Views when possible.
    """
    signal = np.asarray(signal)
    n = signal.shape[0]
    count = num_frames(n, frame_length, frame_shift, snip_edges)
    if count == 0:
        return np.zeros((0, frame_length), dtype=signal.dtype)
    if snip_edges:
        return sliding_window_view(signal, frame_length)[: (count - 1) * frame_shift + 1: frame_shift]
    first = frame_shift // 2 - frame_length // 2
    last = (count - 1) * frame_shift + first + frame_length  # one past the last sample needed
    pad_left, pad_right = max(0, -first), max(0, last - n)
    if pad_left or pad_right:
        # Index map with repeated reflection (covers signals shorter than the padding).
        idx = np.arange(-pad_left, n + pad_right)
        period = 2 * n
        idx = np.mod(idx, period)
        idx = np.where(idx >= n, period - 1 - idx, idx)
        padded = signal[idx]
    else:
        padded = signal
    start = first + pad_left
    return sliding_window_view(padded[start:], frame_length)[: (count - 1) * frame_shift + 1: frame_shift]


def frame_signal(signal, sample_rate, *, frame_length_ms=25.0, frame_shift_ms=10.0, snip_edges=True,
                 dither=0.0, seed=0, remove_dc_offset=True, preemph=0.97, window="povey",
                 raw_energy=True, blackman_coeff=0.42):
    """Cut a signal into processed frames, as Kaldi's ``ExtractWindow``.

    Parameters
    ----------
    signal : array (num_samples,), int16 scale
    sample_rate : float, Hz
    dither : float, standard deviation of Gaussian noise added to every frame sample (numpy
        ``default_rng(seed)``); 0 disables it.
    raw_energy : bool, log energy measured before pre-emphasis and window (Kaldi's default);
        otherwise after them.

    Returns
    -------
    frames : (T, L) float32, windowed frames
    log_energy : (T,) float32, ``log(max(sum(x**2), FLT_EPSILON))`` per frame
    """
    frame_length = ms_to_samples(frame_length_ms, sample_rate)
    frame_shift = ms_to_samples(frame_shift_ms, sample_rate)
    if frame_length < 1 or frame_shift < 1:
        raise SpkrecError(f"frame length {frame_length_ms} ms / shift {frame_shift_ms} ms give less than one "
                          f"sample at {sample_rate} Hz; use longer frames")
    win = window_function(window, frame_length, blackman_coeff)
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise SpkrecError(f"expected a 1-D signal, got shape {signal.shape}; mix down to mono first")
    frames = np.array(strided_frames(signal, frame_length, frame_shift, snip_edges), dtype=np.float32)
    if dither != 0.0 and frames.size:
        noise = np.random.default_rng(seed).standard_normal(frames.shape, dtype=np.float32)
        frames += np.float32(dither) * noise
    if remove_dc_offset:
        frames -= frames.mean(axis=1, keepdims=True, dtype=np.float32)
    if raw_energy:
        log_energy = _log_energy(frames)
    if preemph != 0.0:
        p = np.float32(preemph)
        frames[:, 1:] -= p * frames[:, :-1]
        frames[:, 0] *= np.float32(1.0) - p
    frames *= win
    if not raw_energy:
        log_energy = _log_energy(frames)
    return frames, log_energy


def _log_energy(frames):
    energy = np.einsum("ij,ij->i", frames, frames)
    return np.log(np.maximum(energy, np.float32(FLOAT_EPS))).astype(np.float32)


def power_spectrum(frames, n_fft):
    """Power spectrum ``|rfft(frame, n_fft)|**2`` (T, n_fft//2+1) float32; frames are zero-padded
    (or truncated) to ``n_fft``.  Unnormalised, as Kaldi's."""
    spec = np.fft.rfft(np.asarray(frames, dtype=np.float32), n=int(n_fft), axis=-1)
    re, im = spec.real, spec.imag
    out = re * re
    out += im * im
    return out.astype(np.float32, copy=False)
