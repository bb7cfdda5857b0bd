"""Perceptual linear prediction (Hermansky 1990) and RASTA-PLP (Hermansky & Morgan 1994).

Per frame: power spectrum -> Bark-scale critical-band integration -> [RASTA on log bands] ->
equal-loudness pre-emphasis -> cube-root compression -> inverse DFT to autocorrelation ->
Levinson-Durbin (order p) -> cepstra with ``c_0 = log(gain)`` (see :mod:`spkrec.features.linpred` for
the conventions) -> optional liftering.  Vectorised over frames: the band integration and the
inverse DFT are matrix products, Levinson-Durbin and the cepstral recursion loop over the order.

Band layout (rastamat's ``fft2barkmx``): Bark ``z = 6 asinh(f / 600)``; ``num_bands`` centres equally
spaced in Bark from ``low_freq`` to ``high_freq`` (default ``ceil(z(high) - z(low)) + 1`` bands,
i.e. just under 1 Bark apart: 21 bands at 16 kHz, 17 at 8 kHz).  Band weight of FFT bin at Bark ``z``
for centre ``zc``: Hermansky's masking curve, flat (0 dB) on ``|z - zc| <= 0.5``, rising 10 dB/Bark
below and falling 25 dB/Bark above (``10 ** min(0, z - zc + 0.5, -2.5 (z - zc - 0.5))``, the
exponent divided by ``band_width``), applied to the power spectrum without normalisation.
"""
import numpy as np
from scipy.signal import lfilter

from spkrec.errors import SpkrecError
from spkrec.features.framing import FLOAT_EPS, FrameProcessor, band_energies, next_pow2
from spkrec.features.linpred import levinson_durbin, lift_cepstra, lpc_to_cepstrum


def hz_to_bark(freq):
    """Bark (Schroeder / rastamat): ``6 asinh(f / 600)``."""
    return 6.0 * np.arcsinh(np.asarray(freq, dtype=np.float64) / 600.0)


def bark_to_hz(bark):
    """Inverse of :func:`hz_to_bark`: ``600 sinh(z / 6)``."""
    return 600.0 * np.sinh(np.asarray(bark, dtype=np.float64) / 6.0)


def _band_edges(sample_rate, low_freq, high_freq):
    nyquist = 0.5 * sample_rate
    high = high_freq if high_freq > 0 else nyquist + high_freq  # Kaldi: <= 0 is an offset from Nyquist
    if not 0.0 <= low_freq < high <= nyquist:
        raise SpkrecError(f"band edges low_freq={low_freq} Hz, high_freq={high_freq} Hz are invalid at "
                          f"{sample_rate} Hz; need 0 <= low < high <= {nyquist:g}")
    return float(low_freq), float(high)


def bark_filterbank(n_fft, sample_rate, num_bands=None, low_freq=0.0, high_freq=0.0, band_width=1.0):
    """Critical-band weights (num_bands, n_fft//2+1) float32 and band centres (num_bands,) in Hz.

    See the module docstring for the layout; ``high_freq <= 0`` means Nyquist plus ``high_freq``.
    """
    low, high = _band_edges(sample_rate, low_freq, high_freq)
    z_low, z_high = hz_to_bark(low), hz_to_bark(high)
    if num_bands is None:
        num_bands = int(np.ceil(z_high - z_low)) + 1
    num_bands = int(num_bands)
    if num_bands < 3:
        raise SpkrecError(f"PLP needs at least 3 critical bands (got {num_bands}); widen the band range")
    centres = z_low + np.arange(num_bands) * ((z_high - z_low) / (num_bands - 1))
    bins = hz_to_bark(np.arange(n_fft // 2 + 1) * (sample_rate / n_fft))
    offset = bins[None, :] - centres[:, None]
    exponent = np.minimum(0.0, np.minimum(offset + 0.5, -2.5 * (offset - 0.5))) / band_width
    return (10.0 ** exponent).astype(np.float32), bark_to_hz(centres)


def equal_loudness(freq):
    """Hermansky's (1990) equal-loudness weight
    ``E(w) = (w^2 + 56.8e6) w^4 / ((w^2 + 6.3e6)^2 (w^2 + 0.38e9))`` with ``w = 2 pi f`` rad/s, ``f`` in Hz
    (0 at DC, tends to 1 at high frequencies); rastamat's Hz form rounds these constants."""
    w2 = (2.0 * np.pi * np.asarray(freq, dtype=np.float64)) ** 2
    return (w2 + 56.8e6) * w2 * w2 / ((w2 + 6.3e6) ** 2 * (w2 + 0.38e9))


def rasta_filter(log_bands, pole=0.94):
    """RASTA band-pass filter of log critical-band trajectories along time (axis 0), as rastamat.

    ``y[n] = 0.2 x[n] + 0.1 x[n-1] - 0.1 x[n-3] - 0.2 x[n-4] + pole * y[n-1]`` for ``n >= 4`` with
    ``y[0..3] = 0`` (rastamat's and rasta_filt.c's start-up), i.e.
    ``H(z) = 0.1 (2 + z^-1 - z^-3 - 2 z^-4) / (1 - pole z^-1)``: Hermansky & Morgan's filter without its
    ``z^4`` advance.  ``pole`` 0.94 as rastamat (the paper uses 0.98).  (T, B) -> (T, B) float64.
    """
    x = np.asarray(log_bands, dtype=np.float64)
    y = np.zeros_like(x)
    if x.shape[0] > 4:
        fir = 0.2 * x[4:] + 0.1 * x[3:-1] - 0.1 * x[1:-3] - 0.2 * x[:-4]
        y[4:] = lfilter([1.0], [1.0, -float(pole)], fir, axis=0)
    return y


def _idft_matrix(num_bands, num_lags):
    """(B, K) matrix mapping a B-point spectrum on [0, pi] to autocorrelation lags 0..K-1: the real
    inverse DFT of the even extension ``[y_0 .. y_{B-1}, y_{B-2} .. y_1]`` (length ``2(B-1)``)."""
    m = 2 * (num_bands - 1)
    j = np.arange(num_bands)[:, None]
    k = np.arange(num_lags)[None, :]
    weight = np.where((j == 0) | (j == num_bands - 1), 1.0, 2.0)
    return weight * np.cos(np.pi * j * k / (num_bands - 1)) / m


def _plp(signal, sample_rate, order, num_ceps, cepstral_lifter, num_bands, low_freq, high_freq,
         band_width, n_fft, rasta_pole, framing):
    order = int(order)
    if order < 1:
        raise SpkrecError(f"PLP order must be >= 1 (got {order}); use e.g. order=12")
    frames = FrameProcessor(signal, sample_rate, **framing)
    n_fft = next_pow2(frames.length) if n_fft is None else int(n_fft)
    weights, centres = bark_filterbank(n_fft, sample_rate, num_bands, low_freq, high_freq, band_width)
    if order >= weights.shape[0]:
        raise SpkrecError(f"PLP order {order} must be below the number of critical bands "
                          f"({weights.shape[0]}); lower the order or add bands")
    weights_t = np.ascontiguousarray(weights.T, dtype=np.float32)
    bands = band_energies(frames, n_fft, weights_t, energy=False)[0].astype(np.float64)  # (T, B)
    if rasta_pole is not None:
        bands = np.exp(rasta_filter(np.log(np.maximum(bands, FLOAT_EPS)), rasta_pole))
    loud = np.cbrt(bands * equal_loudness(centres))
    loud[:, 0], loud[:, -1] = loud[:, 1], loud[:, -2]  # edge bands are unreliable: copy neighbours
    a, err = levinson_durbin(loud @ _idft_matrix(loud.shape[1], order + 1), order)
    return lift_cepstra(lpc_to_cepstrum(a, err, num_ceps), cepstral_lifter).astype(np.float32)


def plp(signal, sample_rate, order=12, num_ceps=13, *, cepstral_lifter=0.0, num_bands=None, low_freq=0.0,
        high_freq=0.0, band_width=1.0, n_fft=None, frame_length_ms=25.0, frame_shift_ms=10.0,
        snip_edges=True, dither=0.0, seed=0, remove_dc_offset=True, preemph=0.0, window="hann"):
    """PLP cepstra (T, num_ceps) float32 (Hermansky 1990, rastamat's layout).

    ``order``: all-pole model order (< number of bands); ``c_0 = log(gain)``; ``high_freq <= 0`` is an
    offset from Nyquist (Kaldi); ``n_fft`` defaults to the next power of two of the frame length; no
    pre-emphasis by default (equal loudness does that job); ``cepstral_lifter`` as Kaldi (0 = none).
    """
    framing = dict(frame_length_ms=frame_length_ms, frame_shift_ms=frame_shift_ms, snip_edges=snip_edges,
                   dither=dither, seed=seed, remove_dc_offset=remove_dc_offset, preemph=preemph,
                   window=window)
    return _plp(signal, sample_rate, order, num_ceps, cepstral_lifter, num_bands, low_freq, high_freq,
                band_width, n_fft, None, framing)


def rasta_plp(signal, sample_rate, order=12, num_ceps=13, *, rasta_pole=0.94, cepstral_lifter=0.0,
              num_bands=None, low_freq=0.0, high_freq=0.0, band_width=1.0, n_fft=None, frame_length_ms=25.0,
              frame_shift_ms=10.0, snip_edges=True, dither=0.0, seed=0, remove_dc_offset=True, preemph=0.0,
              window="hann"):
    """RASTA-PLP cepstra (T, num_ceps) float32: :func:`plp` with :func:`rasta_filter` (pole ``rasta_pole``)
    applied to the log critical-band energies (floored at FLT_EPSILON), then ``exp`` back before equal
    loudness and compression, as rastamat.  The first 4 frames carry the filter's zero start-up."""
    framing = dict(frame_length_ms=frame_length_ms, frame_shift_ms=frame_shift_ms, snip_edges=snip_edges,
                   dither=dither, seed=seed, remove_dc_offset=remove_dc_offset, preemph=preemph,
                   window=window)
    return _plp(signal, sample_rate, order, num_ceps, cepstral_lifter, num_bands, low_freq, high_freq,
                band_width, n_fft, float(rasta_pole), framing)


