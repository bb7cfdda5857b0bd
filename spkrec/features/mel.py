"""Log mel filterbank (``fbank``) and MFCC (``mfcc``) with two presets.

``preset="kaldi"``: Kaldi's ``compute-fbank-feats`` / ``compute-mfcc-feats`` (dither 1.0 seeded by
``seed``, DC removal, raw log energy, pre-emphasis, povey window; mel(f) = 1127 ln(1 + f/700);
unnormalised power spectrum; log floored at FLT_EPSILON).
``preset="psf"``: ``python_speech_features.logfbank`` / ``mfcc`` (pre-emphasis of the whole signal,
zero-padded last frame, rectangular window, power spectrum divided by ``n_fft``, psf's rounded filter
bins, log energy of the power spectrum, zeros replaced by float64 epsilon before the log; ``dither``,
0 by default, is an addition of ours).

Frames are processed in blocks of :func:`spkrec.features.framing.block_frames` frames (cache-resident
buffers, bounded by ``framing.BLOCK_BYTES``): scipy's float32 FFT,
filterbank and DCT (with the lifter folded in) as matrix products; no per-frame Python loop.

Keyword options (Kaldi's names) override the preset; ``valid_options(kind, preset)`` lists them.
Signals are in int16 scale (as ``spkrec.io.read_audio`` returns them).
"""
import functools

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.features.framing import (FLOAT_EPS, FrameProcessor, _window, band_energies, gaussian_noise,
                                     next_pow2, strided_frames)

_FRAMING_KALDI = dict(frame_length_ms=25.0, frame_shift_ms=10.0, dither=1.0, seed=0, preemph=0.97,
                      remove_dc_offset=True, window="povey", blackman_coeff=0.42, snip_edges=True,
                      round_to_power_of_two=True, n_fft=None, low_freq=20.0, high_freq=0.0,
                      energy_floor=0.0, raw_energy=True)
_FRAMING_PSF = dict(frame_length_ms=25.0, frame_shift_ms=10.0, dither=0.0, seed=0, preemph=0.97,
                    window="rectangular", n_fft=512, low_freq=0.0, high_freq=0.0, num_mel_bins=26)

PRESETS = {
    ("fbank", "kaldi"): dict(_FRAMING_KALDI, num_mel_bins=23, use_energy=False, use_log_fbank=True,
                             use_power=True),
    ("mfcc", "kaldi"): dict(_FRAMING_KALDI, num_mel_bins=23, use_energy=True, num_ceps=13,
                            cepstral_lifter=22.0),
    ("fbank", "psf"): dict(_FRAMING_PSF),
    ("mfcc", "psf"): dict(_FRAMING_PSF, num_ceps=13, cepstral_lifter=22.0, use_energy=True),
}


def valid_options(kind, preset):
    """Option names (and preset defaults) accepted by ``fbank``/``mfcc`` for ``preset``."""
    if (kind, preset) not in PRESETS:
        raise SpkrecError(f"unknown preset {preset!r} for {kind}; use 'kaldi' or 'psf'")
    return dict(PRESETS[(kind, preset)])


def _resolve(kind, preset, options):
    opts = valid_options(kind, preset)
    unknown = sorted(set(options) - set(opts))
    if unknown:
        raise SpkrecError(f"unknown {kind} option(s) {', '.join(unknown)} for preset {preset!r}; "
                          f"valid options: {', '.join(sorted(opts))}")
    opts.update(options)
    return opts


def mel_scale(freq, kind="kaldi"):
    """Hz -> mel: Kaldi/HTK ``1127 ln(1 + f/700)``, psf ``2595 log10(1 + f/700)`` (same curve)."""
    freq = np.asarray(freq, dtype=np.float64)
    if kind == "psf":
        return 2595 * np.log10(1 + freq / 700.)
    return 1127.0 * np.log(1.0 + freq / 700.0)


def _band_edges(sample_rate, low_freq, high_freq):
    nyquist = 0.5 * float(sample_rate)
    high = float(high_freq) if high_freq > 0 else nyquist + float(high_freq)
    low = float(low_freq)
    if not (0.0 <= low < high <= nyquist):
        raise SpkrecError(f"bad mel band low_freq={low_freq}, high_freq={high_freq} at {sample_rate} Hz; "
                          f"need 0 <= low_freq < high_freq <= {nyquist:g} (high_freq <= 0 is an offset "
                          "from Nyquist)")
    return low, high


def mel_filterbank(num_bins, n_fft, sample_rate, low_freq=20.0, high_freq=0.0, kind="kaldi"):
    """Triangular mel filters, shape (num_bins, n_fft//2 + 1) float32, to multiply a power spectrum.

    ``kind="kaldi"``: triangles equally spaced on mel(f) = 1127 ln(1+f/700) between low_freq and
    high_freq, evaluated at the mel value of each FFT bin centre ``i*sample_rate/n_fft`` for
    ``i < n_fft/2`` (the Nyquist column is zero), as Kaldi's ``MelBanks``.
    ``kind="psf"``: python_speech_features' ``get_filterbanks`` (edges rounded down to FFT bins
    ``floor((n_fft+1) f / sample_rate)``, linear triangles in bin index).
    ``high_freq <= 0`` means ``Nyquist + high_freq``.
    """
    num_bins, n_fft = int(num_bins), int(n_fft)
    if num_bins < 1 or n_fft < 2:
        raise SpkrecError(f"need num_bins >= 1 and n_fft >= 2 (got {num_bins}, {n_fft})")
    low, high = _band_edges(sample_rate, low_freq, high_freq)
    num_cols = n_fft // 2 + 1
    if kind == "kaldi":
        mel_low, mel_high = mel_scale(low), mel_scale(high)
        delta = (mel_high - mel_low) / (num_bins + 1)
        edges = mel_low + delta * np.arange(num_bins + 2)
        left, center, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
        mel = mel_scale(np.arange(n_fft // 2) * (float(sample_rate) / n_fft))[None, :]
        rising = (mel - left) / (center - left)
        falling = (right - mel) / (right - center)
        weights = np.where(mel <= center, rising, falling)
        weights = np.where((mel > left) & (mel < right), weights, 0.0)
        out = np.zeros((num_bins, num_cols), dtype=np.float32)
        out[:, : n_fft // 2] = weights
        return out
    if kind == "psf":
        points = np.linspace(mel_scale(low, "psf"), mel_scale(high, "psf"), num_bins + 2)
        hz = 700 * (10 ** (points / 2595.0) - 1)
        b = np.floor((n_fft + 1) * hz / sample_rate)
        i = np.arange(num_cols)[None, :]
        lo, mid, hi = b[:-2, None], b[1:-1, None], b[2:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            rising = np.where((i >= lo) & (i < mid), (i - lo) / (mid - lo), 0.0)
            falling = np.where((i >= mid) & (i < hi), (hi - i) / (hi - mid), 0.0)
        return (rising + falling).astype(np.float32)
    raise SpkrecError(f"unknown mel filterbank kind {kind!r}; use 'kaldi' or 'psf'")


def dct_matrix(num_ceps, num_bins):
    """Orthonormal DCT-II rows 0..num_ceps-1, shape (num_ceps, num_bins) float64 (Kaldi's
    ``ComputeDctMatrix``, scipy ``dct(type=2, norm='ortho')``)."""
    k = np.arange(num_ceps)[:, None]
    n = np.arange(num_bins)[None, :]
    mat = np.sqrt(2.0 / num_bins) * np.cos(np.pi / num_bins * (n + 0.5) * k)
    mat[0] *= np.sqrt(0.5)
    return mat


def lifter_coefficients(num_ceps, cepstral_lifter):
    """``1 + Q/2 sin(pi i / Q)`` for i < num_ceps (ones when Q <= 0)."""
    i = np.arange(num_ceps)
    if cepstral_lifter <= 0:
        return np.ones(num_ceps)
    q = float(cepstral_lifter)
    return 1.0 + 0.5 * q * np.sin(np.pi * i / q)


def _check_signal(signal):
    signal = np.asarray(signal, dtype=np.float32)
    if signal.ndim != 1:
        raise SpkrecError(f"expected a 1-D signal, got shape {signal.shape}; mix down to mono first")
    return signal


def _fft_size(length, o):
    n_fft = o["n_fft"]
    if n_fft is None:
        return next_pow2(length) if o["round_to_power_of_two"] else length
    if int(n_fft) < length:
        raise SpkrecError(f"n_fft={n_fft} is shorter than the frame ({length} samples); "
                          "use n_fft >= frame length or leave it unset")
    return int(n_fft)


class _PsfFrames:
    """python_speech_features framing: whole-signal pre-emphasis, zero-padded end, window."""

    def __init__(self, signal, sample_rate, o):
        self.length = int(np.floor(float(sample_rate) * o["frame_length_ms"] / 1000.0 + 0.5))  # round_half_up
        self.shift = int(np.floor(float(sample_rate) * o["frame_shift_ms"] / 1000.0 + 0.5))
        if self.length < 1 or self.shift < 1:
            raise SpkrecError(f"frame length/shift under one sample at {sample_rate} Hz; use longer frames")
        self.window = _window(o["window"], self.length, 0.42)
        self.rectangular = o["window"] == "rectangular"
        if o["dither"] != 0.0:
            signal = signal + np.float32(o["dither"]) * gaussian_noise(signal.shape[0], o["seed"])
        n = signal.shape[0]
        self.count = min(n, 1) if n <= self.length else 1 + int(np.ceil((n - self.length) / self.shift))
        padded = np.zeros(max(self.count - 1, 0) * self.shift + self.length, dtype=np.float32)
        if n:
            padded[0] = signal[0]
            np.subtract(signal[1:], np.float32(o["preemph"]) * signal[:-1], out=padded[1:n])
        self.frames = strided_frames(padded, self.length, self.shift, snip_edges=True)

    def process(self, start, stop, out, energy=False):
        dest = out[: stop - start, : self.length]
        if self.rectangular:
            np.copyto(dest, self.frames[start:stop])
        else:
            np.multiply(self.frames[start:stop], self.window, out=dest)


def _mel_energies(frames, n_fft, fb_t, psf, use_power=True):
    """Mel energies (count, bins) float32 and log energies (count,) float32 of ``frames``.

    With ``psf`` the last column of ``fb_t`` is all ``1/n_fft``: it yields psf's frame energy
    ``sum(|X|^2) / n_fft`` inside the same matrix product, returned as the log energy; otherwise the
    log energies are the frame processor's.
    """
    mel, log_energy = band_energies(frames, n_fft, fb_t, use_power=use_power, energy=not psf)
    if psf:
        total = mel[:, -1]
        log_energy = np.log(np.where(total == 0, np.float32(np.finfo(float).eps), total))
        mel = mel[:, :-1]
    return mel, log_energy


def _setup(kind, signal, sample_rate, preset, options):
    """Resolved options, frame source, n_fft and the transposed filterbank (F, bins [+1 for psf])."""
    o = _resolve(kind, preset, options)
    signal = _check_signal(signal)
    _band_edges(sample_rate, o["low_freq"], o["high_freq"])
    if preset == "psf":
        frames = _PsfFrames(signal, sample_rate, o)
        n_fft = int(o["n_fft"])
    else:
        frames = _kaldi_frames(signal, sample_rate, o)
        n_fft = _fft_size(frames.length, o)
    fb_t = _filterbank_t(int(o["num_mel_bins"]), n_fft, float(sample_rate), float(o["low_freq"]),
                         float(o["high_freq"]), preset)
    return o, frames, n_fft, fb_t


@functools.lru_cache(maxsize=64)
def _filterbank_t(num_bins, n_fft, sample_rate, low_freq, high_freq, preset):
    """Transposed filterbank (F, bins), read-only; psf: scaled by 1/n_fft plus an all-1/n_fft column."""
    fb = mel_filterbank(num_bins, n_fft, sample_rate, low_freq, high_freq, preset)
    if preset == "psf":
        fb = np.vstack([fb, np.ones((1, fb.shape[1]), dtype=np.float32)]) * np.float32(1.0 / n_fft)
    fb_t = np.ascontiguousarray(fb.T)
    fb_t.setflags(write=False)
    return fb_t


@functools.lru_cache(maxsize=64)
def _cepstral_t(num_ceps, num_bins, cepstral_lifter):
    """Transposed DCT-II with the lifter folded in, (bins, ceps) float32, read-only."""
    mat = dct_matrix(num_ceps, num_bins) * lifter_coefficients(num_ceps, cepstral_lifter)[:, None]
    mat_t = np.ascontiguousarray(mat.T, dtype=np.float32)
    mat_t.setflags(write=False)
    return mat_t


def _kaldi_frames(signal, sample_rate, o):
    names = ("frame_length_ms", "frame_shift_ms", "snip_edges", "dither", "seed", "remove_dc_offset",
             "preemph", "window", "raw_energy", "blackman_coeff")
    return FrameProcessor(signal, sample_rate, **{name: o[name] for name in names})


def _energy_floor(log_energy, o):
    if o.get("energy_floor", 0.0) > 0:
        np.maximum(log_energy, np.float32(np.log(o["energy_floor"])), out=log_energy)
    return log_energy


def _log_floor(mel, psf):
    if psf:  # python_speech_features replaces exact zeros by float64 epsilon
        mel = np.where(mel == 0, np.float32(np.finfo(float).eps), mel)
    else:  # Kaldi floors at FLT_EPSILON
        np.maximum(mel, np.float32(FLOAT_EPS), out=mel)
    return np.log(mel, out=mel)


def fbank(signal, sample_rate, preset="kaldi", **options):
    """Log mel filterbank energies.

    Parameters
    ----------
    signal : array (num_samples,), int16 scale
    sample_rate : int, Hz
    preset : "kaldi" (compute-fbank-feats defaults, 23 bins) or "psf" (logfbank defaults, 26 bins)
    **options : Kaldi-named overrides (see ``valid_options("fbank", preset)``)

    Returns
    -------
    (T, num_mel_bins) float32; with ``use_energy`` (kaldi) the log energy is prepended (T, 1 + bins).
    """
    o, frames, n_fft, fb_t = _setup("fbank", signal, sample_rate, preset, options)
    psf = preset == "psf"
    use_energy, use_log = o.get("use_energy", False), o.get("use_log_fbank", True)

    mel, log_energy = _mel_energies(frames, n_fft, fb_t, psf, o.get("use_power", True))
    if use_log:
        mel = _log_floor(mel, psf)
    if use_energy:
        return np.concatenate([_energy_floor(log_energy, o)[:, None], mel], axis=1)
    return np.ascontiguousarray(mel)


def mfcc(signal, sample_rate, preset="kaldi", **options):
    """Mel-frequency cepstral coefficients.

    Log mel energies -> orthonormal DCT-II (first ``num_ceps``) -> lifter ``1 + Q/2 sin(pi i/Q)``;
    with ``use_energy`` c0 is replaced by the frame log energy (Kaldi: raw energy before
    pre-emphasis/window; psf: log of the summed power spectrum).

    Parameters
    ----------
    signal : array (num_samples,), int16 scale
    sample_rate : int, Hz
    preset : "kaldi" (compute-mfcc-feats defaults: 23 bins, 13 ceps) or "psf" (psf.mfcc: 26 filters)
    **options : Kaldi-named overrides (see ``valid_options("mfcc", preset)``)

    Returns
    -------
    (T, num_ceps) float32
    """
    o, frames, n_fft, fb_t = _setup("mfcc", signal, sample_rate, preset, options)
    num_ceps, num_bins = int(o["num_ceps"]), int(o["num_mel_bins"])
    if not 1 <= num_ceps <= num_bins:
        raise SpkrecError(f"num_ceps={num_ceps} must be between 1 and num_mel_bins={num_bins}; "
                          "lower num_ceps or raise num_mel_bins")
    psf = preset == "psf"
    dct_t = _cepstral_t(num_ceps, num_bins, float(o["cepstral_lifter"]))
    use_energy = o["use_energy"]

    mel, log_energy = _mel_energies(frames, n_fft, fb_t, psf)
    ceps = _log_floor(mel, psf) @ dct_t
    if use_energy:
        ceps[:, 0] = _energy_floor(log_energy, o)
    return ceps
