"""Framing, mel filterbank, fbank and MFCC against python_speech_features and kaldi_native_fbank on real
speech from data/, plus windows, dither and option errors."""
import glob
import os

import numpy as np
import pytest

from spkrec.errors import SpkrecError
from spkrec.features.framing import frame_signal, gaussian_noise, next_pow2, power_spectrum, window_function
from spkrec.features.mel import fbank, mel_filterbank, mfcc, valid_options
from spkrec.io.audio import read_audio

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = (sorted(glob.glob(os.path.join(ROOT, "data/so762-mini/WAVE/*/*.flac")))[:2]
         + sorted(glob.glob(os.path.join(ROOT, "data/timit-sample/TIMIT/TRAIN/*/*/*.WAV")))[:2])


@pytest.fixture(scope="module")
def speech():
    assert len(FILES) == 4, "embedded corpora missing under data/"
    return [read_audio(f) for f in FILES]


def _knf(x, sr, kind, snip_edges=True, num_ceps=None, frame=None, top=None, **mel):
    knf = pytest.importorskip("kaldi_native_fbank")
    opts = knf.MfccOptions() if kind == "mfcc" else knf.FbankOptions()
    opts.frame_opts.dither = 0.0
    opts.frame_opts.samp_freq = float(sr)
    opts.frame_opts.snip_edges = snip_edges
    if num_ceps is not None:
        opts.num_ceps = num_ceps
    for key, value in mel.items():
        setattr(opts.mel_opts, key, value)
    for key, value in (frame or {}).items():
        setattr(opts.frame_opts, key, value)
    for key, value in (top or {}).items():
        setattr(opts, key, value)
    comp = knf.OnlineMfcc(opts) if kind == "mfcc" else knf.OnlineFbank(opts)
    comp.accept_waveform(float(sr), x.tolist())
    comp.input_finished()
    return np.array([comp.get_frame(i) for i in range(comp.num_frames_ready)], dtype=np.float32)


# ---------------------------------------------------------------- python_speech_features preset
def test_psf_preset_equals_python_speech_features(speech):
    psf = pytest.importorskip("python_speech_features")
    for x, sr in speech:
        ours, ref = mfcc(x, sr, preset="psf"), psf.mfcc(x.astype(np.float64), sr)
        assert ours.shape == ref.shape and ours.dtype == np.float32
        assert np.abs(ours - ref).max() < 1e-3
        ours, ref = fbank(x, sr, preset="psf"), psf.logfbank(x.astype(np.float64), sr)
        assert ours.shape == ref.shape and ours.dtype == np.float32
        assert np.abs(ours - ref).max() < 1e-3


def test_psf_preset_non_default_options(speech):
    psf = pytest.importorskip("python_speech_features")
    x, sr = speech[2]
    ours = mfcc(x, sr, preset="psf", num_mel_bins=40, num_ceps=20, low_freq=100.0, high_freq=7000.0,
                preemph=0.95, cepstral_lifter=0, use_energy=False, window="hamming",
                frame_length_ms=32.0, frame_shift_ms=16.0)
    ref = psf.mfcc(x.astype(np.float64), sr, winlen=0.032, winstep=0.016, numcep=20, nfilt=40,
                   lowfreq=100, highfreq=7000, preemph=0.95, ceplifter=0, appendEnergy=False,
                   winfunc=np.hamming)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-3


def test_psf_filterbank_equals_get_filterbanks():
    psf_base = pytest.importorskip("python_speech_features.base")
    for nfilt, nfft, sr, low, high in [(26, 512, 16000, 0, 8000), (40, 256, 8000, 133, 3800),
                                       (20, 1024, 44100, 300, 11025)]:
        ref = psf_base.get_filterbanks(nfilt, nfft, sr, low, high)
        np.testing.assert_allclose(mel_filterbank(nfilt, nfft, sr, low, high, kind="psf"), ref, atol=1e-6)


# ---------------------------------------------------------------- Kaldi preset
@pytest.mark.parametrize("snip_edges", [True, False])
def test_kaldi_preset_equals_kaldi_native_fbank(speech, snip_edges):
    for x, sr in speech:
        ours, ref = mfcc(x, sr, dither=0.0, snip_edges=snip_edges), _knf(x, sr, "mfcc", snip_edges)
        assert ours.shape == ref.shape == (ref.shape[0], 13) and ours.dtype == np.float32
        assert np.abs(ours - ref).max() < 1e-2
        ours, ref = fbank(x, sr, dither=0.0, snip_edges=snip_edges), _knf(x, sr, "fbank", snip_edges)
        assert ours.shape == ref.shape == (ref.shape[0], 23) and ours.dtype == np.float32
        assert np.abs(ours - ref).max() < 1e-2


def test_kaldi_preset_non_default_options(speech):
    x, sr = speech[1]
    ours = mfcc(x, sr, dither=0.0, num_mel_bins=40, num_ceps=20, high_freq=-400.0, low_freq=60.0)
    ref = _knf(x, sr, "mfcc", num_ceps=20, num_bins=40, high_freq=-400.0, low_freq=60.0)
    assert ours.shape == ref.shape == (ref.shape[0], 20)
    assert np.abs(ours - ref).max() < 1e-2
    ours = fbank(x, sr, dither=0.0, num_mel_bins=64, high_freq=7000.0, snip_edges=False)
    ref = _knf(x, sr, "fbank", snip_edges=False, num_bins=64, high_freq=7000.0)
    assert ours.shape == ref.shape == (ref.shape[0], 64)
    assert np.abs(ours - ref).max() < 1e-2


def test_kaldi_preset_non_default_framing(speech):
    x, sr = speech[0]
    ours = mfcc(x, sr, dither=0.0, window="hamming", preemph=0.9, remove_dc_offset=False, raw_energy=False,
                frame_length_ms=20.0, frame_shift_ms=8.0, cepstral_lifter=0.0, snip_edges=False)
    ref = _knf(x, sr, "mfcc", snip_edges=False,
               frame=dict(window_type="hamming", preemph_coeff=0.9, remove_dc_offset=False,
                          frame_length_ms=20.0, frame_shift_ms=8.0),
               top=dict(raw_energy=False, cepstral_lifter=0.0))
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-2
    ours = fbank(x, sr, dither=0.0, window="blackman", use_energy=True, use_power=False, energy_floor=1.0)
    ref = _knf(x, sr, "fbank", frame=dict(window_type="blackman"),
               top=dict(use_energy=True, use_power=False, energy_floor=1.0))
    assert ours.shape == ref.shape == (ref.shape[0], 24)
    assert np.abs(ours - ref).max() < 1e-2


def test_kaldi_preset_at_8khz(speech):
    from spkrec.io.audio import resample
    x, sr = speech[3]
    y = resample(x, sr, 8000)
    ours, ref = mfcc(y, 8000, dither=0.0, high_freq=3700.0), _knf(y, 8000, "mfcc", high_freq=3700.0)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 1e-2


def test_kaldi_filterbank_equals_kaldi_native_fbank():
    knf = pytest.importorskip("kaldi_native_fbank")
    for bins, sr, low, high in [(23, 16000, 20.0, 0.0), (40, 8000, 20.0, -200.0), (80, 16000, 0.0, 7600.0)]:
        mel_opts, frame_opts = knf.MelBanksOptions(), knf.FrameExtractionOptions()
        mel_opts.num_bins, mel_opts.low_freq, mel_opts.high_freq = bins, low, high
        frame_opts.samp_freq = float(sr)
        ref = np.array(knf.MelBanks(mel_opts, frame_opts).get_matrix())
        n_fft = next_pow2(int(sr * 0.025))
        ours = mel_filterbank(bins, n_fft, sr, low, high, kind="kaldi")
        assert ours.shape == (bins, n_fft // 2 + 1) and ours.dtype == np.float32
        np.testing.assert_allclose(ours[:, : ref.shape[1]], ref, atol=5e-5)  # knf works in float32
        assert not ours[:, ref.shape[1]:].any()


# ---------------------------------------------------------------- framing
def _slow_kaldi_frames(x, length, shift, snip_edges, preemph, window):
    """Kaldi's ExtractWindow + ProcessWindow, one frame and one sample at a time."""
    n = len(x)
    count = (1 + (n - length) // shift if n >= length else 0) if snip_edges else (n + shift // 2) // shift
    frames, energies = [], []
    for f in range(count):
        start = f * shift if snip_edges else f * shift + shift // 2 - length // 2
        frame = []
        for s in range(length):
            i = start + s
            while i < 0 or i >= n:
                i = -i - 1 if i < 0 else 2 * n - 1 - i
            frame.append(float(x[i]))
        mean = sum(frame) / length
        frame = [v - mean for v in frame]
        energies.append(np.log(max(sum(v * v for v in frame), np.finfo(np.float32).eps)))
        for s in range(length - 1, 0, -1):
            frame[s] -= preemph * frame[s - 1]
        frame[0] -= preemph * frame[0]
        frames.append([v * w for v, w in zip(frame, window)])
    return np.array(frames).reshape(count, length), np.array(energies)


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("num_samples,window", [(3, "povey"), (80, "hamming"), (99, "povey"),
                                                (100, "rectangular"), (1234, "povey"), (1234, "hamming")])
def test_frame_signal_matches_slow_kaldi_loop(snip_edges, num_samples, window):
    x = np.random.default_rng(num_samples).normal(0, 1000, num_samples).astype(np.float32) + 300
    sr = 4000  # 25 ms = 100 samples, 10 ms = 40 samples
    frames, log_energy = frame_signal(x, sr, snip_edges=snip_edges, window=window)
    ref, ref_energy = _slow_kaldi_frames(x, 100, 40, snip_edges, 0.97, window_function(window, 100))
    assert frames.shape == ref.shape and frames.dtype == np.float32 and log_energy.dtype == np.float32
    np.testing.assert_allclose(frames, ref, rtol=1e-4, atol=1e-2)
    np.testing.assert_allclose(log_energy, ref_energy, rtol=1e-5, atol=1e-4)
    expected = (num_samples + 20) // 40 if not snip_edges else max(0, 1 + (num_samples - 100) // 40)
    assert frames.shape[0] == expected


def test_windows_follow_formulas():
    n, length = np.arange(400), 400
    a = 2 * np.pi / (length - 1)
    hann = 0.5 - 0.5 * np.cos(a * n)
    expected = {"hann": hann, "hamming": 0.54 - 0.46 * np.cos(a * n), "povey": hann ** 0.85,
                "blackman": 0.42 - 0.5 * np.cos(a * n) + 0.08 * np.cos(2 * a * n),
                "rectangular": np.ones(length)}
    for name, ref in expected.items():
        w = window_function(name, length)
        assert w.dtype == np.float32 and w.shape == (length,)
        np.testing.assert_allclose(w, ref, atol=1e-6)
    np.testing.assert_allclose(window_function("hamming", 300), np.hamming(300), atol=1e-6)
    np.testing.assert_allclose(window_function("blackman", 300), np.blackman(300), atol=1e-6)


def test_window_choice_changes_features(speech):
    x, sr = speech[0]
    windows = ("povey", "hamming", "hann", "rectangular", "blackman")
    feats = {w: mfcc(x, sr, dither=0.0, window=w) for w in windows}
    names = list(feats)
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            assert np.abs(feats[names[i]] - feats[names[j]]).max() > 1e-2


def test_power_spectrum_and_next_pow2():
    assert [next_pow2(n) for n in (1, 2, 3, 200, 256, 257, 400)] == [1, 2, 4, 256, 256, 512, 512]
    frames = np.random.default_rng(0).normal(size=(7, 400)).astype(np.float32)
    spec = power_spectrum(frames, 512)
    assert spec.shape == (7, 257) and spec.dtype == np.float32
    ref = np.abs(np.fft.rfft(frames.astype(np.float64), 512)) ** 2
    np.testing.assert_allclose(spec, ref, rtol=1e-4, atol=1e-3)


# ---------------------------------------------------------------- dither, shapes, errors
def test_dither_reproducible_per_seed(speech):
    x, sr = speech[0]
    a, b = mfcc(x, sr), mfcc(x, sr)  # kaldi preset: dither 1.0, seed 0
    np.testing.assert_array_equal(a, b)
    c = mfcc(x, sr, seed=1)
    assert np.abs(a - c).max() > 0
    d = mfcc(x, sr, dither=0.0)
    assert 0 < np.abs(a - d).mean() < 0.5  # dither is a small perturbation of the clean features
    np.testing.assert_array_equal(fbank(x, sr, seed=5), fbank(x, sr, seed=5))
    assert np.abs(fbank(x, sr, seed=5) - fbank(x, sr, seed=6)).max() > 0


def test_gaussian_noise_is_standard_normal():
    from scipy import stats
    noise = gaussian_noise(100001, seed=3)
    assert noise.dtype == np.float32 and noise.shape == (100001,)
    assert stats.kstest(noise, "norm").pvalue > 1e-3
    np.testing.assert_array_equal(noise, gaussian_noise(100001, seed=3))
    assert abs(np.corrcoef(noise[:-1], noise[1:])[0, 1]) < 0.02


def test_shapes_dtypes_and_edge_cases():
    x = np.random.default_rng(1).normal(0, 500, 16000).astype(np.float32)
    assert mfcc(x, 16000).shape == (98, 13)
    assert mfcc(x, 16000, snip_edges=False).shape == (100, 13)
    assert fbank(x, 16000).shape == (98, 23)
    assert fbank(x, 16000, use_energy=True).shape == (98, 24)
    assert mfcc(x, 16000, preset="psf").shape == (99, 13)
    assert fbank(x, 16000, preset="psf").shape == (99, 26)
    short = x[:300]
    assert mfcc(short, 16000).shape == (0, 13) and mfcc(short, 16000).dtype == np.float32
    assert mfcc(short, 16000, preset="psf").shape == (1, 13)
    empty = np.zeros(0, dtype=np.float32)
    for preset in ("kaldi", "psf"):
        assert mfcc(empty, 16000, preset=preset).shape == (0, 13)
        assert fbank(empty, 16000, preset=preset).shape[0] == 0
    silence = np.zeros(4000, dtype=np.float32)
    out = mfcc(silence, 16000, dither=0.0)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:, 0], np.log(np.finfo(np.float32).eps), rtol=1e-6)
    assert np.isfinite(fbank(silence, 16000, preset="psf")).all()
    for feats in (mfcc(x.astype(np.int16), 16000), mfcc(list(x[:1000]), 16000)):
        assert feats.dtype == np.float32


@pytest.mark.parametrize("call", [
    lambda x: mfcc(x, 16000, num_cepstra=13),
    lambda x: fbank(x, 16000, preset="psf", snip_edges=False),
    lambda x: mfcc(x, 16000, preset="htk"),
    lambda x: mfcc(x, 16000, num_ceps=30),
    lambda x: mfcc(x, 16000, high_freq=9000.0),
    lambda x: mfcc(x, 16000, low_freq=5000.0, high_freq=4000.0),
    lambda x: fbank(x, 16000, window="kaiser"),
    lambda x: fbank(x, 16000, n_fft=256),
    lambda x: mfcc(np.zeros((2, 1600), dtype=np.float32), 16000),
    lambda x: fbank(x, 16000, frame_length_ms=0.01),
])
def test_bad_options_raise_clear_errors(call):
    x = np.random.default_rng(2).normal(0, 500, 8000).astype(np.float32)
    with pytest.raises(SpkrecError) as err:
        call(x)
    message = str(err.value)
    assert "\n" not in message and ";" in message


def test_unknown_option_lists_valid_ones():
    with pytest.raises(SpkrecError, match="valid options: .*num_ceps"):
        mfcc(np.zeros(1600, dtype=np.float32), 16000, numcep=13)
    assert valid_options("mfcc", "kaldi")["num_mel_bins"] == 23
    assert valid_options("fbank", "psf")["num_mel_bins"] == 26
