"""LPC, LPCC, PLP and RASTA-PLP against slow, direct, frame-by-frame textbook loops on real speech."""
import glob
import importlib

import numpy as np
import pytest
from scipy.linalg import solve_toeplitz

from spkrec.errors import SpkrecError
from spkrec.io.audio import read_audio
from spkrec.features.linpred import levinson_durbin, lpc, lpcc
from spkrec.features.perceptual import plp, rasta_plp

plp_module = importlib.import_module("spkrec.features.perceptual")
FLT_EPS = float(np.finfo(np.float32).eps)


@pytest.fixture(scope="module")
def speech():
    """One second of speech from so762-mini (16 kHz, int16 scale)."""
    path = sorted(glob.glob("data/so762-mini/WAVE/*/*.flac"))[3]
    x, rate = read_audio(path)
    return x[rate // 2: rate // 2 + rate], rate


@pytest.fixture(scope="module")
def speech8k():
    """TIMIT speech resampled to 8 kHz (1.2 s)."""
    path = sorted(glob.glob("data/timit-sample/TIMIT/TRAIN/*/*/*.WAV"))[0]
    x, rate = read_audio(path, target_rate=8000)
    return x[4000:4000 + 9600], rate


# ---------------------------------------------------------------- slow references (written independently)

def slow_frames(x, rate, window, preemph, length_ms=25.0, shift_ms=10.0):
    """Kaldi-order framing with snip_edges: DC removal, pre-emphasis (x[0] -= p x[0]), window."""
    length, shift = int(rate * length_ms / 1000), int(rate * shift_ms / 1000)
    n = np.arange(length)
    if window == "hamming":
        w = 0.54 - 0.46 * np.cos(2 * np.pi * n / (length - 1))
    else:  # hann
        w = 0.5 - 0.5 * np.cos(2 * np.pi * n / (length - 1))
    frames = []
    for t in range(1 + (len(x) - length) // shift):
        f = x[t * shift: t * shift + length].astype(np.float64)
        f = f - f.mean()
        e = np.empty(length)
        e[0] = f[0] - preemph * f[0]
        for i in range(1, length):
            e[i] = f[i] - preemph * f[i - 1]
        frames.append(e * w)
    return frames


def slow_durbin(r, p):
    """Normal equations solved directly: a = [1, solve_toeplitz(r[:p], -r[1:p+1])], err = r0 + a.r."""
    a = np.concatenate([[1.0], solve_toeplitz(r[:p], -r[1:p + 1])])
    return a, float(a @ r[:p + 1])


def slow_cepstrum(a, err, num_ceps):
    """Textbook LPC -> cepstrum recursion as a plain double loop; A(z) = 1 + sum a_k z^-k."""
    p = len(a) - 1
    c = [np.log(max(err, FLT_EPS))]
    for n in range(1, num_ceps):
        s = -a[n] if n <= p else 0.0
        for k in range(1, n):
            if n - k <= p:
                s -= k * c[k] * a[n - k] / n
        c.append(s)
    return np.array(c)


def slow_bark_weight(z_bin, z_centre):
    """Hermansky's masking curve (no truncation): flat +-0.5 Bark, +10 dB/Bark below, -25 dB/Bark above."""
    d = z_bin - z_centre
    if d < -0.5:
        return 10.0 ** (d + 0.5)
    if d > 0.5:
        return 10.0 ** (-2.5 * (d - 0.5))
    return 1.0


def slow_plp(x, rate, order=12, num_ceps=13, rasta=False, pole=0.94):
    frames = slow_frames(x, rate, "hann", 0.0)
    length = len(frames[0])
    n_fft = 1
    while n_fft < length:
        n_fft *= 2
    nbins = n_fft // 2 + 1
    # critical bands: ceil(Bark(nyquist)) + 1 centres from 0 to Nyquist Bark
    bark = lambda f: 6.0 * np.log(f / 600.0 + np.sqrt((f / 600.0) ** 2 + 1.0))
    z_nyq = bark(rate / 2.0)
    nb = int(np.ceil(z_nyq)) + 1
    centres = [i * z_nyq / (nb - 1) for i in range(nb)]
    weights = np.zeros((nb, nbins))
    for b in range(nb):
        for k in range(nbins):
            weights[b, k] = slow_bark_weight(bark(k * rate / n_fft), centres[b])
    dft = np.exp(-2j * np.pi * np.outer(np.arange(nbins), np.arange(length)) / n_fft)  # direct DFT
    bands = np.zeros((len(frames), nb))
    for t, f in enumerate(frames):
        power = np.abs(dft @ f) ** 2
        for b in range(nb):
            bands[t, b] = weights[b] @ power
    if rasta:
        logb = np.log(np.maximum(bands, FLT_EPS))
        filt = np.zeros_like(logb)
        for b in range(nb):
            for t in range(4, len(frames)):
                filt[t, b] = (0.2 * logb[t, b] + 0.1 * logb[t - 1, b] - 0.1 * logb[t - 3, b]
                              - 0.2 * logb[t - 4, b] + pole * filt[t - 1, b])
        bands = np.exp(filt)
    out = []
    for t in range(len(frames)):
        y = np.zeros(nb)
        for b in range(nb):
            f_hz = 600.0 * np.sinh(centres[b] / 6.0)
            w = 2 * np.pi * f_hz
            eql = (w ** 2 + 56.8e6) * w ** 4 / ((w ** 2 + 6.3e6) ** 2 * (w ** 2 + 0.38e9))
            y[b] = (eql * bands[t, b]) ** (1.0 / 3.0)
        y[0], y[-1] = y[1], y[-2]
        spectrum = np.concatenate([y, y[-2:0:-1]])  # even extension, length 2(nb-1)
        m = len(spectrum)
        r = np.zeros(order + 1)
        for k in range(order + 1):
            r[k] = sum(spectrum[j] * np.cos(2 * np.pi * j * k / m) for j in range(m)) / m
        a, err = slow_durbin(r, order)
        out.append(slow_cepstrum(a, err, num_ceps))
    return np.array(out)


# ---------------------------------------------------------------- Levinson-Durbin

def test_levinson_matches_solve_toeplitz(speech):
    x, rate = speech
    p = 16
    rs = []
    for f in slow_frames(x, rate, "hamming", 0.97):
        full = np.correlate(f, f, "full")
        rs.append(full[len(f) - 1: len(f) + p + 3])  # extra lags must be ignored
    rs = np.array(rs)
    a, err = levinson_durbin(rs, p)
    assert a.shape == (len(rs), p + 1) and err.shape == (len(rs),)
    for t in range(len(rs)):
        a_ref, err_ref = slow_durbin(rs[t], p)
        np.testing.assert_allclose(a[t], a_ref, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(err[t], err_ref, rtol=1e-6)
    a1, e1 = levinson_durbin(rs[5], p)  # one frame as 1-D
    np.testing.assert_allclose(a1, a[5])
    np.testing.assert_allclose(e1, err[5])


def test_levinson_silent_and_degenerate_frames():
    r = np.zeros((3, 9))
    r[1, 0] = 4.0  # white: a = [1, 0...], err = r0
    r[2] = 5.0 * np.cos(0.3 * np.arange(9))  # a single sinusoid: singular after order 2
    a, err = levinson_durbin(r, 8)
    assert np.isfinite(a).all() and np.isfinite(err).all()
    np.testing.assert_array_equal(a[0], np.eye(9)[0])
    assert err[0] == 0.0
    np.testing.assert_allclose(a[1], np.eye(9)[0])
    np.testing.assert_allclose(err[1], 4.0)
    np.testing.assert_allclose(a[2, :3], [1.0, -2 * np.cos(0.3), 1.0], atol=1e-6)
    assert err[2] <= 1e-9 * r[2, 0]
    with pytest.raises(SpkrecError):
        levinson_durbin(r, 9)


# ---------------------------------------------------------------- LPC / LPCC

def test_lpc_matches_frame_by_frame_loop(speech):
    x, rate = speech
    ours = lpc(x, rate, order=12)
    frames = slow_frames(x, rate, "hamming", 0.97)
    assert ours.shape == (len(frames), 13) and ours.dtype == np.float32
    for t, f in enumerate(frames):
        r = np.correlate(f, f, "full")[len(f) - 1: len(f) + 13]
        a_ref, err_ref = slow_durbin(r, 12)
        np.testing.assert_allclose(ours[t, 1:], a_ref[1:], atol=2e-5)
        np.testing.assert_allclose(ours[t, 0], np.log(err_ref), atol=2e-5)


def test_lpc_synthesis_error_equals_err(speech):
    """Inverse-filtering each frame with A(z) leaves exactly the prediction-error power err."""
    x, rate = speech
    feats = lpc(x, rate, order=10, preemph=0.0, window="hann")
    frames = slow_frames(x, rate, "hann", 0.0)
    for t in range(0, len(frames), 7):
        a = np.concatenate([[1.0], feats[t, 1:].astype(np.float64)])
        residual = np.convolve(frames[t], a)  # e[n] = x[n] + sum_k a_k x[n-k], zero outside the frame
        np.testing.assert_allclose(np.log(residual @ residual), feats[t, 0], atol=1e-4)
        # and no other polynomial of the same order predicts better
        worse = a + np.r_[0.0, 1e-3 * np.random.default_rng(t).standard_normal(10)]
        assert np.sum(np.convolve(frames[t], worse) ** 2) > residual @ residual


def test_lpcc_matches_recursion_and_spectrum(speech):
    x, rate = speech
    p, nc = 12, 20  # continued beyond the order
    feats = lpc(x, rate, order=p)
    ceps = lpcc(x, rate, order=p, num_ceps=nc)
    assert ceps.shape == (feats.shape[0], nc) and ceps.dtype == np.float32
    for t in range(feats.shape[0]):
        a = np.concatenate([[1.0], feats[t, 1:].astype(np.float64)])
        err = np.exp(np.float64(feats[t, 0]))
        np.testing.assert_allclose(ceps[t], slow_cepstrum(a, err, nc), rtol=1e-4, atol=1e-4)
    # closed form: c_n (n >= 1) = 2 * IDFT(-log|A(e^jw)|)[n] for minimum-phase A
    a = np.concatenate([[1.0], feats[40, 1:].astype(np.float64)])
    spec = -np.log(np.abs(np.fft.fft(a, 4096)))
    np.testing.assert_allclose(ceps[40, 1:], 2 * np.fft.ifft(spec).real[1:nc], atol=1e-4)
    lifted = lpcc(x, rate, order=p, num_ceps=nc, cepstral_lifter=22.0)
    lift = 1 + 11.0 * np.sin(np.pi * np.arange(nc) / 22.0)
    np.testing.assert_allclose(lifted, ceps * lift, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- PLP / RASTA-PLP

def test_plp_matches_direct_loops(speech):
    x, rate = speech
    x = x[: rate // 2]
    ours = plp(x, rate, order=12, num_ceps=13)
    ref = slow_plp(x, rate, order=12, num_ceps=13)
    assert ours.shape == ref.shape == (48, 13) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=2e-4)


def test_rasta_plp_matches_direct_loops(speech):
    x, rate = speech
    x = x[: rate // 2]
    ours = rasta_plp(x, rate, order=12, num_ceps=13)
    ref = slow_plp(x, rate, order=12, num_ceps=13, rasta=True)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=2e-4)
    assert not np.allclose(ours, plp(x, rate))
    ref98 = slow_plp(x, rate, order=8, num_ceps=15, rasta=True, pole=0.98)
    np.testing.assert_allclose(rasta_plp(x, rate, order=8, num_ceps=15, rasta_pole=0.98), ref98,
                               rtol=1e-4, atol=2e-4)


def test_plp_at_8khz(speech8k):
    x, rate = speech8k
    weights, centres = plp_module.bark_filterbank(256, rate)
    assert weights.shape == (17, 129)  # ceil(Bark(4 kHz)) + 1 bands
    np.testing.assert_allclose(ours := plp(x, rate, order=8, num_ceps=10), slow_plp(x, rate, 8, 10),
                               rtol=1e-4, atol=2e-4)
    assert ours.shape == (118, 10)


def test_band_layout_and_equal_loudness():
    weights, centres = plp_module.bark_filterbank(512, 16000)
    assert weights.shape == (21, 257)
    np.testing.assert_allclose(centres[[0, -1]], [0.0, 8000.0], atol=1e-6)
    spacing = np.diff(plp_module.hz_to_bark(centres))
    np.testing.assert_allclose(spacing, spacing[0])
    assert 0.95 < spacing[0] < 1.0  # just under 1 Bark
    assert weights.max() == pytest.approx(1.0)
    # Hermansky's E(w) in rad/s equals rastamat's Hz form up to its rounded constants
    f = np.linspace(50, 8000, 200)
    fsq = f ** 2
    rastamat = (fsq / (fsq + 1.6e5)) ** 2 * (fsq + 1.44e6) / (fsq + 9.61e6)
    np.testing.assert_allclose(plp_module.equal_loudness(f), rastamat, rtol=3e-3)
    assert plp_module.equal_loudness(0.0) == 0.0


def test_rasta_filter_difference_equation():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 3))
    y = plp_module.rasta_filter(x, pole=0.9)
    ref = np.zeros_like(x)
    for t in range(4, 30):
        ref[t] = 0.2 * x[t] + 0.1 * x[t - 1] - 0.1 * x[t - 3] - 0.2 * x[t - 4] + 0.9 * ref[t - 1]
    np.testing.assert_allclose(y, ref, atol=1e-12)
    np.testing.assert_allclose(plp_module.rasta_filter(np.full((50, 2), 7.0))[4:], 0.0, atol=1e-12)  # no DC
    assert plp_module.rasta_filter(x[:3]).shape == (3, 3)


# ---------------------------------------------------------------- shapes, silence, errors

@pytest.mark.parametrize("func,dim", [(lpc, 13), (lpcc, 13), (plp, 13), (rasta_plp, 13)])
def test_silence_short_input_and_dtype(func, dim):
    silent = func(np.zeros(16000, dtype=np.float32), 16000)
    assert silent.shape == (98, dim) and silent.dtype == np.float32
    assert np.isfinite(silent).all()
    assert func(np.zeros(100), 16000).shape == (0, dim)
    assert np.isfinite(func(np.zeros(1000), 16000)).all()  # fewer than 5 frames for RASTA
    noise = np.random.default_rng(1).standard_normal(8000) * 100
    out = func(noise, 16000, snip_edges=False, dither=1.0)
    assert out.shape == (50, dim) and np.isfinite(out).all()


def test_bad_options_raise_spkrec_error(speech):
    x, rate = speech
    with pytest.raises(SpkrecError):
        lpc(x, rate, order=0)
    with pytest.raises(SpkrecError):
        lpc(x, rate, order=400)
    with pytest.raises(SpkrecError):
        plp(x, rate, order=21)  # 21 bands at 16 kHz
    with pytest.raises(SpkrecError):
        plp(x, rate, high_freq=9000.0)
    with pytest.raises(SpkrecError):
        lpcc(x, rate, num_ceps=0)


def test_package_exports_stay_callable(speech):
    """The package exports are the functions themselves (not modules of the same name)."""
    import inspect
    import pickle

    import spkrec.features as features

    x, rate = speech
    for name, func in (("lpc", lpc), ("plp", plp), ("lpcc", lpcc), ("rasta_plp", rasta_plp)):
        exported = getattr(features, name)
        np.testing.assert_array_equal(exported(x, rate), func(x, rate))
        assert inspect.signature(exported) == inspect.signature(func)
        np.testing.assert_array_equal(pickle.loads(pickle.dumps(exported))(x, rate), func(x, rate))


def test_exports_are_functions_even_after_submodules_are_imported(speech):
    import importlib
    import spkrec.features as features
    for module in ("linpred", "perceptual", "dynamic", "mel", "norm", "vad"):
        importlib.import_module(f"spkrec.features.{module}")
    for name in features.__all__:
        assert callable(getattr(features, name)) and not isinstance(getattr(features, name), type(features)), name
