"""LFCC / CQCC against direct per-frame formulas (hand-built filter bank, DCT as a sum of cosines)."""
import math

import numpy as np
import pytest

from spkrec.errors import SpkrecError
from spkrec.features import cqcc, deltas, lfcc
from spkrec.features.config import FEATURE_TYPES, feature_function


def _speechlike(n, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / rate
    x = 3000 * np.sin(2 * np.pi * 220 * t) + 1500 * np.sin(2 * np.pi * 1330 * t) + rng.normal(0, 300, n)
    return x.astype(np.float32)


def _dct_loop(values, num_ceps):
    n = len(values)
    out = []
    for k in range(num_ceps):
        s = sum(values[i] * math.cos(math.pi * k * (i + 0.5) / n) for i in range(n))
        out.append(s * (math.sqrt(1.0 / n) if k == 0 else math.sqrt(2.0 / n)))
    return np.array(out)


def _lfcc_reference(x, rate, num_ceps=20, num_filters=20, length=320, shift=160, n_fft=512, p=0.97):
    x = x.astype(np.float64)
    edges = [0.0 + (rate / 2.0) * m / (num_filters + 1) for m in range(num_filters + 2)]
    bank = np.zeros((num_filters, n_fft // 2 + 1))
    for m in range(num_filters):
        lo, c, hi = edges[m], edges[m + 1], edges[m + 2]
        for i in range(n_fft // 2 + 1):
            f = i * rate / n_fft
            if lo < f <= c:
                bank[m, i] = (f - lo) / (c - lo)
            elif c < f < hi:
                bank[m, i] = (hi - f) / (hi - c)
    window = np.hamming(length)
    rows = []
    for start in range(0, len(x) - length + 1, shift):
        frame = x[start:start + length]
        emph = np.empty(length)
        emph[0] = (1 - p) * frame[0]
        emph[1:] = frame[1:] - p * frame[:-1]
        power = np.abs(np.fft.rfft(emph * window, n_fft)) ** 2
        rows.append(_dct_loop(np.log(np.maximum(bank @ power, np.finfo(np.float32).eps)), num_ceps))
    return np.array(rows)


def test_lfcc_matches_direct_formula():
    x = _speechlike(4000)
    got = lfcc(x, 16000)
    ref = _lfcc_reference(x, 16000)
    assert got.shape == ref.shape == (1 + (4000 - 320) // 160, 20)
    np.testing.assert_allclose(got, ref, rtol=1e-3, atol=2e-3)


def test_lfcc_other_sizes_and_deltas():
    x = _speechlike(3000, seed=1)
    got = lfcc(x, 16000, num_ceps=12, num_filters=30)
    np.testing.assert_allclose(got, _lfcc_reference(x, 16000, 12, 30), rtol=1e-3, atol=2e-3)
    full = lfcc(x, 16000, num_ceps=12, num_filters=30, deltas_order=2)
    assert full.shape == (got.shape[0], 36)
    np.testing.assert_allclose(full, deltas(got, order=2), rtol=1e-5, atol=1e-5)


def test_cqcc_matches_direct_formula():
    import librosa
    rate, fmin, bpo, d = 16000, 62.5, 24, 8
    x = _speechlike(8000, seed=2)
    got = cqcc(x, rate, bins_per_octave=bpo, fmin=fmin, resample_d=d, num_ceps=13)
    n_bins = int(np.floor(np.log2(8000 / fmin))) * bpo  # 7 octaves below Nyquist
    spec = librosa.cqt(x.astype(np.float64) / 32768.0, sr=rate, hop_length=160, fmin=fmin, n_bins=n_bins,
                       bins_per_octave=bpo)
    logp = np.log(np.maximum(np.abs(spec) ** 2, np.finfo(np.float32).eps))
    freqs = np.array([fmin * 2 ** (k / bpo) for k in range(n_bins)])
    grid, f = [], fmin
    while f <= freqs[-1] + 1e-9:
        grid.append(f)
        f += fmin / d
    ref = np.array([_dct_loop(np.interp(grid, freqs, logp[:, t]), 13) for t in range(logp.shape[1])])
    assert got.shape == ref.shape == (1 + 8000 // 160, 13)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)
    assert cqcc(x, rate, bins_per_octave=bpo, fmin=fmin, resample_d=d, num_ceps=13, deltas_order=1).shape == (51, 26)


def test_registered_feature_types():
    assert FEATURE_TYPES["lfcc"] == "lfcc" and FEATURE_TYPES["cqcc"] == "cqcc"
    assert feature_function("lfcc") is lfcc and feature_function("cqcc") is cqcc


def test_bad_input_is_one_line():
    with pytest.raises(SpkrecError, match="num_ceps"):
        lfcc(_speechlike(2000), 16000, num_ceps=30)
    with pytest.raises(SpkrecError, match="1-D"):
        lfcc(np.zeros((2, 100)), 16000)
    with pytest.raises(SpkrecError, match="Nyquist"):
        cqcc(_speechlike(2000), 16000, fmin=4000, num_octaves=2)
