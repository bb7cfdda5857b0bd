"""Spoofing-countermeasure front ends: LFCC and CQCC (the ASVspoof 2019 baselines' features).

``lfcc``: pre-emphasis, Hamming-windowed frames (20 ms / 10 ms), power spectrum ``|rfft|**2``,
``num_filters`` triangular filters equally spaced on a *linear* frequency axis, log (floored at
FLT_EPSILON), orthonormal DCT-II, first ``num_ceps`` coefficients (c0 included), as the ASVspoof 2019
LFCC-GMM baseline (20 filters, 20 coefficients, NFFT 512).

``cqcc``: constant-Q transform (``librosa.cqt``, ``bins_per_octave`` bins per octave from ``fmin``),
log power spectrum, uniform resampling of the geometric frequency axis onto a linear one (the first
octave gets ``resample_d`` samples, so the spacing is ``fmin / resample_d``; linear interpolation of
the log power), orthonormal DCT-II, first ``num_ceps`` coefficients.

Both return (T, num_ceps) float32, or with ``deltas_order > 0`` the Kaldi deltas appended
(``spkrec.features.deltas``, window 2): (T, num_ceps * (deltas_order + 1)). Signals are in int16 scale.
"""
import functools
import warnings

import numpy as np
import scipy.fft

from spkrec.errors import SpkrecError
from spkrec.features.framing import FLOAT_EPS, FrameProcessor, band_energies, next_pow2


def linear_filterbank(num_filters, n_fft, sample_rate, low_freq=0.0, high_freq=0.0):
    """Triangular filters equally spaced in Hz, shape (num_filters, n_fft//2 + 1) float32.

    Filter ``m`` rises from edge ``m`` to edge ``m+1`` and falls to edge ``m+2`` of ``num_filters + 2``
    edges ``linspace(low_freq, high_freq)``, evaluated at the FFT bin frequencies ``i*rate/n_fft``;
    peak 1. ``high_freq <= 0`` means Nyquist + high_freq.
    """
    num_filters, n_fft = int(num_filters), int(n_fft)
    nyquist = 0.5 * float(sample_rate)
    high = float(high_freq) if high_freq > 0 else nyquist + float(high_freq)
    low = float(low_freq)
    if num_filters < 1 or n_fft < 2:
        raise SpkrecError(f"need num_filters >= 1 and n_fft >= 2 (got {num_filters}, {n_fft})")
    if not 0.0 <= low < high <= nyquist:
        raise SpkrecError(f"bad LFCC band low_freq={low_freq}, high_freq={high_freq} at {sample_rate} Hz; "
                          f"need 0 <= low_freq < high_freq <= {nyquist:g}")
    edges = np.linspace(low, high, num_filters + 2)
    freq = np.arange(n_fft // 2 + 1) * (float(sample_rate) / n_fft)
    left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freq - left) / (center - left)
    falling = (right - freq) / (right - center)
    return np.clip(np.minimum(rising, falling), 0.0, None).astype(np.float32)


def dct_ortho(num_ceps, num_bins):
    """Orthonormal DCT-II rows 0..num_ceps-1 (num_ceps, num_bins) float64 (scipy ``dct(norm='ortho')``)."""
    k = np.arange(num_ceps)[:, None]
    n = np.arange(num_bins)[None, :]
    mat = np.sqrt(2.0 / num_bins) * np.cos(np.pi / num_bins * (n + 0.5) * k)
    mat[0] *= np.sqrt(0.5)
    return mat


@functools.lru_cache(maxsize=16)
def _lfcc_matrices(num_filters, num_ceps, n_fft, sample_rate, low_freq, high_freq):
    fb_t = np.ascontiguousarray(linear_filterbank(num_filters, n_fft, sample_rate, low_freq, high_freq).T)
    dct_t = np.ascontiguousarray(dct_ortho(num_ceps, num_filters).T, dtype=np.float32)
    fb_t.setflags(write=False)
    dct_t.setflags(write=False)
    return fb_t, dct_t


def _signal(signal):
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise SpkrecError(f"expected a 1-D signal, got shape {signal.shape}; mix down to mono first")
    return signal


def _with_deltas(ceps, deltas_order):
    if int(deltas_order) < 0:
        raise SpkrecError(f"deltas_order must be >= 0, got {deltas_order}")
    if int(deltas_order) == 0:
        return np.ascontiguousarray(ceps, dtype=np.float32)
    from spkrec.features.dynamic import deltas
    return deltas(ceps, order=int(deltas_order))


def lfcc(signal, sample_rate, *, num_ceps=20, num_filters=20, frame_length_ms=20.0, frame_shift_ms=10.0,
         n_fft=512, preemph=0.97, window="hamming", low_freq=0.0, high_freq=0.0, dither=0.0, seed=0,
         snip_edges=True, deltas_order=0):
    """Linear-frequency cepstral coefficients (ASVspoof 2019 baseline LFCC).

    Parameters
    ----------
    signal : array (num_samples,), int16 scale
    sample_rate : int, Hz
    num_ceps, num_filters : DCT coefficients kept (c0 included) and linear triangular filters
    n_fft : FFT size (at least the frame length; None = next power of two)
    deltas_order : 0 for static coefficients only, else append deltas up to this order

    Returns
    -------
    (T, num_ceps * (deltas_order + 1)) float32
    """
    signal = _signal(signal)
    if not 1 <= int(num_ceps) <= int(num_filters):
        raise SpkrecError(f"num_ceps={num_ceps} must be between 1 and num_filters={num_filters}")
    frames = FrameProcessor(signal, sample_rate, frame_length_ms=frame_length_ms, frame_shift_ms=frame_shift_ms,
                            snip_edges=snip_edges, dither=dither, seed=seed, remove_dc_offset=False,
                            preemph=preemph, window=window, raw_energy=False)
    n_fft = next_pow2(frames.length) if n_fft is None else int(n_fft)
    if n_fft < frames.length:
        raise SpkrecError(f"n_fft={n_fft} is shorter than the frame ({frames.length} samples); raise n_fft")
    fb_t, dct_t = _lfcc_matrices(int(num_filters), int(num_ceps), n_fft, float(sample_rate),
                                 float(low_freq), float(high_freq))
    energies, _ = band_energies(frames, n_fft, fb_t, energy=False)
    np.maximum(energies, np.float32(FLOAT_EPS), out=energies)
    return _with_deltas(np.log(energies) @ dct_t, deltas_order)


def uniform_resample(log_power, freqs, resample_d):
    """Resample (num_bins, T) values on geometric ``freqs`` onto a linear grid of spacing
    ``freqs[0] / resample_d`` from ``freqs[0]`` to ``freqs[-1]`` (linear interpolation).
    Returns (num_linear, T) float64."""
    step = freqs[0] / float(resample_d)
    grid = freqs[0] + step * np.arange(int(np.floor((freqs[-1] - freqs[0]) / step)) + 1)
    pos = np.interp(grid, freqs, np.arange(freqs.size))  # fractional bin index of each grid point
    lo = np.minimum(np.floor(pos).astype(int), freqs.size - 2)
    frac = (pos - lo)[:, None]
    return log_power[lo] * (1.0 - frac) + log_power[lo + 1] * frac


def cqcc(signal, sample_rate, *, num_ceps=20, bins_per_octave=48, fmin=0.0, num_octaves=0,
         frame_shift_ms=10.0, resample_d=16, deltas_order=0):
    """Constant-Q cepstral coefficients.

    Parameters
    ----------
    signal : array (num_samples,), int16 scale
    sample_rate : int, Hz
    bins_per_octave : CQT resolution B
    fmin : lowest CQT frequency in Hz (0 = ``sample_rate / 2**9``)
    num_octaves : octaves analysed (0 = as many as fit below Nyquist)
    frame_shift_ms : CQT hop (rounded to samples)
    resample_d : uniform samples in the first octave (the linear grid step is ``fmin / resample_d``)
    deltas_order : 0 for static coefficients only, else append deltas up to this order

    Returns
    -------
    (T, num_ceps * (deltas_order + 1)) float32, T = 1 + num_samples // hop (centred frames)
    """
    import librosa
    signal = _signal(signal)
    fmin = float(fmin) if fmin > 0 else float(sample_rate) / 2 ** 9
    nyquist = 0.5 * float(sample_rate)
    octaves = int(num_octaves) if num_octaves > 0 else int(np.floor(np.log2(nyquist / fmin)))
    n_bins = octaves * int(bins_per_octave)
    if n_bins < 2 or fmin * 2 ** ((n_bins - 1) / bins_per_octave) >= nyquist:
        raise SpkrecError(f"CQT from fmin={fmin:g} Hz over {octaves} octave(s) does not fit below Nyquist "
                          f"{nyquist:g} Hz; lower fmin or num_octaves")
    hop = int(round(float(sample_rate) * frame_shift_ms / 1000.0))
    if hop < 1:
        raise SpkrecError(f"frame_shift_ms={frame_shift_ms} is under one sample at {sample_rate} Hz")
    with warnings.catch_warnings():  # librosa warns about its low octaves' FFT size on short signals
        warnings.simplefilter("ignore", UserWarning)
        spec = librosa.cqt(signal.astype(np.float64) / 32768.0, sr=sample_rate, hop_length=hop, fmin=fmin,
                           n_bins=n_bins, bins_per_octave=int(bins_per_octave))
    log_power = np.log(np.maximum(np.abs(spec) ** 2, FLOAT_EPS))
    freqs = fmin * 2.0 ** (np.arange(n_bins) / float(bins_per_octave))
    linear = uniform_resample(log_power, freqs, resample_d)
    if not 1 <= int(num_ceps) <= linear.shape[0]:
        raise SpkrecError(f"num_ceps={num_ceps} must be between 1 and {linear.shape[0]} resampled bins")
    ceps = scipy.fft.dct(linear, type=2, norm="ortho", axis=0)[: int(num_ceps)].T
    return _with_deltas(ceps, deltas_order)
