"""On-the-fly augmentation of log-mel filter-bank crops (numpy only, seeded by the caller's Generator).

All three work on natural-log mel energies ``(T, D)`` (Kaldi ``fbank`` features before any mean
normalisation) and need no external corpus:

* :func:`fixed_crop`: a random window of exactly ``n`` frames (a shorter utterance is repeated).
* :func:`add_babble`: other training utterances added in the power domain at a random SNR.
* :func:`speed_perturb`: the frame axis resampled by a factor (tempo change of the features).
"""
import numpy as np


def fixed_crop(x, n, rng):
    """A random window of ``n`` frames of ``x (T, D)``; shorter ``x`` is tiled (repeated) to ``n`` frames first."""
    T = x.shape[0]
    if T < n:
        x = np.concatenate([x] * (n // T + 1))[:max(n, T)]
        T = x.shape[0]
    start = int(rng.integers(0, T - n + 1))
    return x[start:start + n]


def add_babble(x, others, snr_db):
    """``log(exp(x) + g * sum_k exp(o_k))`` with the gain ``g`` that makes the mixture's SNR ``snr_db`` dB.

    ``x (T, D)`` and each of ``others`` (same shape) are log mel energies; the SNR is the ratio of the
    mean mel energy of ``x`` to that of the summed babble. Mel energies of independent signals add in
    expectation, so this is additive babble noise in the filter-bank domain.
    """
    x = np.asarray(x, dtype=np.float64)
    noise = np.logaddexp.reduce(np.stack([np.asarray(o, dtype=np.float64) for o in others]), axis=0)
    log_px = np.logaddexp.reduce(x, axis=None) - np.log(x.size)
    log_pn = np.logaddexp.reduce(noise, axis=None) - np.log(noise.size)
    log_g = log_px - log_pn - float(snr_db) / 10.0 * np.log(10.0)
    return np.logaddexp(x, noise + log_g).astype(np.float32)


def speed_perturb(x, factor):
    """Frames of ``x (T, D)`` resampled by ``factor`` (>1: faster, fewer frames), by linear interpolation.

    Returns ``(round(T / factor), D)`` float32. Only the time axis changes (a tempo change): unlike
    resampling the audio (Kaldi's speed perturbation) the spectral envelope is not shifted.
    """
    T = x.shape[0]
    n = max(1, int(round(T / float(factor))))
    pos = np.clip(np.arange(n) * float(factor), 0, T - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, T - 1)
    w = (pos - lo)[:, None]
    return ((1.0 - w) * x[lo] + w * x[hi]).astype(np.float32)
