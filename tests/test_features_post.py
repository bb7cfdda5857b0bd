"""Post-processing of feature matrices: deltas, energy VAD, CMVN, sliding CMVN, warping, config files."""
import numpy as np
import pytest
import python_speech_features as psf
from scipy.stats import norm as normal

from spkrec.errors import SpkrecError
from spkrec.features import cmvn, deltas, feature_warping, sliding_cmvn, vad_energy
from spkrec.features.config import FEATURE_TYPES, read_config

RNG = np.random.default_rng(7)


# ------------------------------------------------------------------------------------------------ deltas

def _deltas_loop(x, order, window):
    """Kaldi add-deltas written out: order-i block = (regression filter)^i applied to clamped frames."""
    T, D = x.shape
    norm = sum(j * j for j in range(-window, window + 1))
    out = np.zeros((T, D * (order + 1)))
    for t in range(T):
        out[t, :D] = x[t]
        for i in range(1, order + 1):
            # taps of the i-fold composed filter: all tuples (j1..ji), weight prod(j)/norm^i
            acc = np.zeros(D)
            offsets = [(0, 1.0)]
            for _ in range(i):
                offsets = [(o + j, w * j / norm) for o, w in offsets for j in range(-window, window + 1)]
            for o, w in offsets:
                acc += w * x[min(max(t + o, 0), T - 1)]
            out[t, i * D:(i + 1) * D] = acc
    return out


@pytest.mark.parametrize("T,order,window", [(1, 2, 2), (3, 2, 2), (17, 2, 2), (12, 1, 3), (9, 3, 1), (6, 0, 2)])
def test_deltas_match_kaldi_formula_loop(T, order, window):
    x = RNG.normal(size=(T, 4)).astype(np.float32) * 10
    got = deltas(x, order=order, window=window)
    assert got.shape == (T, 4 * (order + 1)) and got.dtype == np.float32
    np.testing.assert_allclose(got, _deltas_loop(x.astype(np.float64), order, window), rtol=1e-5, atol=1e-4)


def test_first_order_deltas_equal_python_speech_features():
    x = RNG.normal(size=(50, 13)) * 5
    np.testing.assert_allclose(deltas(x, order=1)[:, 13:], psf.delta(x, 2), rtol=1e-5, atol=1e-4)


def test_second_order_deltas_are_deltas_of_deltas_away_from_edges():
    x = RNG.normal(size=(40, 3))
    d = deltas(x, order=2)
    dd_recursive = psf.delta(psf.delta(x, 2), 2)
    np.testing.assert_allclose(d[4:-4, 6:], dd_recursive[4:-4], rtol=1e-4, atol=1e-5)
    # a linear ramp has constant delta = slope and zero acceleration in the interior
    ramp = np.arange(30, dtype=np.float64)[:, None] * 2.0
    dr = deltas(ramp, order=2)
    np.testing.assert_allclose(dr[4:-4, 1], 2.0, atol=1e-5)
    np.testing.assert_allclose(dr[4:-4, 2], 0.0, atol=1e-5)


# ------------------------------------------------------------------------------------------------ VAD

def _feats_with_energy(log_energy):
    e = np.asarray(log_energy, dtype=np.float32)
    return np.column_stack([e, np.zeros_like(e)])


def test_vad_hand_computed_threshold_and_mean_scale():
    feats = _feats_with_energy([0, 10, 10, 0, 10])
    np.testing.assert_array_equal(vad_energy(feats, energy_mean_scale=0.0), [0, 1, 1, 0, 1])
    # mean = 6 -> threshold 5 + 0.5 * 6 = 8; with 4 + 1.0 * 6 = 10 nothing is voiced (strict ">")
    np.testing.assert_array_equal(vad_energy(feats), [0, 1, 1, 0, 1])
    np.testing.assert_array_equal(vad_energy(feats, energy_threshold=4.0, energy_mean_scale=1.0), [0, 0, 0, 0, 0])
    np.testing.assert_array_equal(vad_energy(_feats_with_energy([8, 9]), energy_threshold=8.0,
                                             energy_mean_scale=0.0), [0, 1])
    assert vad_energy(feats).dtype == np.float32


def test_vad_hand_computed_context_and_proportion():
    feats = _feats_with_energy([0, 10, 10, 0, 10])
    # windows (clamped): {0,1} {0,1,2} {1,2,3} {2,3,4} {3,4}; voiced if #above >= 0.6 * #frames
    np.testing.assert_array_equal(vad_energy(feats, energy_mean_scale=0.0, frames_context=1), [0, 1, 1, 1, 0])
    np.testing.assert_array_equal(vad_energy(feats, energy_mean_scale=0.0, frames_context=1,
                                             proportion_threshold=0.4), [1, 1, 1, 1, 1])
    # upstream Kaldi's loop tests frame t itself, so its context changes nothing
    np.testing.assert_array_equal(vad_energy(feats, energy_mean_scale=0.0, frames_context=1, kaldi_frame_test=True),
                                  [0, 1, 1, 0, 1])
    # context wider than the utterance
    np.testing.assert_array_equal(vad_energy(feats, energy_mean_scale=0.0, frames_context=50), [1, 1, 1, 1, 1])


def test_vad_uses_kaldi_float32_comparison():
    # frame 4 with context 5 sees frames 0..9 (10 frames), 7 of them loud: 7 >= 10 * 0.7f is true in
    # float32 (10 * 0.7f rounds to 7.0) but false in float64 (7.000000000000001)
    e = np.zeros(20)
    e[[0, 1, 2, 3, 5, 6, 7]] = 10.0
    v = vad_energy(_feats_with_energy(e), energy_mean_scale=0.0, frames_context=5, proportion_threshold=0.7)
    assert v[4] == 1.0


def test_vad_matches_direct_loop_on_random_energies():
    e = RNG.normal(10, 4, size=300).astype(np.float32)
    feats = _feats_with_energy(e)
    for ctx, prop in [(0, 0.6), (2, 0.6), (5, 0.3), (3, 0.99)]:
        thr = np.float32(np.float32(5.0) + np.float32(0.5) * np.float32(e.astype(np.float64).mean()))
        want = []
        for t in range(len(e)):
            frames = [t2 for t2 in range(t - ctx, t + ctx + 1) if 0 <= t2 < len(e)]
            num = sum(1 for t2 in frames if e[t2] > thr)
            want.append(1.0 if num >= np.float32(len(frames)) * np.float32(prop) else 0.0)
        np.testing.assert_array_equal(vad_energy(feats, frames_context=ctx, proportion_threshold=prop), want)


def test_vad_rejects_bad_options():
    with pytest.raises(ValueError):
        vad_energy(_feats_with_energy([1, 2]), proportion_threshold=1.0)
    with pytest.raises(ValueError):
        vad_energy(_feats_with_energy([1, 2]), frames_context=-1)
    assert vad_energy(np.zeros((0, 3))).shape == (0,)


# ------------------------------------------------------------------------------------------------ CMVN

def test_utterance_cmvn_hand_computed():
    x = np.array([[1, 2], [3, 4], [5, 9]], dtype=np.float32)
    np.testing.assert_allclose(cmvn(x), [[-2, -3], [0, -1], [2, 4]], atol=1e-6)
    var = np.array([8 / 3, 26 / 3])
    np.testing.assert_allclose(cmvn(x, norm_vars=True), np.array([[-2, -3], [0, -1], [2, 4]]) / np.sqrt(var),
                               rtol=1e-6)
    constant = np.ones((4, 2), dtype=np.float32)
    assert np.all(np.isfinite(cmvn(constant, norm_vars=True)))


def test_sliding_cmvn_hand_computed_windows():
    x = np.arange(5, dtype=np.float32)[:, None]
    # centre, window 3: windows [0,3) [0,3) [1,4) [2,5) [2,5)
    np.testing.assert_allclose(sliding_cmvn(x, window=3, center=True)[:, 0], [-1, 0, 0, 0, 1], atol=1e-6)
    # left window 2 (t-2..t) with min_window 3: [0,3) [0,3) [0,3) [1,4) [2,5)
    np.testing.assert_allclose(sliding_cmvn(x, window=2, center=False, min_window=3)[:, 0], [-1, 0, 1, 1, 1],
                               atol=1e-6)
    # left window, min_window 1: [0,1) [0,2) [0,3) [1,4) [2,5)
    np.testing.assert_allclose(sliding_cmvn(x, window=2, center=False, min_window=1)[:, 0],
                               [0, 0.5, 1, 1, 1], atol=1e-6)
    # variance normalisation: one-frame window -> 0; [0,2) -> (1 - 0.5) / 0.5
    np.testing.assert_allclose(sliding_cmvn(x, window=2, center=False, min_window=1, norm_vars=True)[:2, 0],
                               [0, 1], atol=1e-6)


def _sliding_cmvn_loop(x, window, center, min_window, norm_vars):
    """Kaldi SlidingWindowCmnInternal, frame by frame, sums recomputed over each window."""
    T, D = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    for t in range(T):
        if center:
            start = t - window // 2
            end = start + window
        else:
            start, end = t - window, t + 1
        if start < 0:
            end -= start
            start = 0
        if not center and end > t:
            end = max(t + 1, min_window)
        if end > T:
            start -= end - T
            end = T
            start = max(start, 0)
        w = x[start:end].astype(np.float64)
        n = end - start
        out[t] = x[t] - w.sum(0) / n
        if norm_vars:
            if n == 1:
                out[t] = 0.0
            else:
                var = np.maximum((w * w).sum(0) / n - (w.sum(0) / n) ** 2, 1e-10)
                out[t] *= var ** -0.5
    return out


@pytest.mark.parametrize("T", [1, 2, 7, 150, 733])
@pytest.mark.parametrize("window,center,min_window,norm_vars",
                         [(600, True, 100, False), (300, True, 100, True), (20, False, 5, False),
                          (600, False, 100, True), (31, True, 31, False), (4, False, 50, True)])
def test_sliding_cmvn_matches_kaldi_loop(T, window, center, min_window, norm_vars):
    x = (RNG.normal(size=(T, 3)) * [1, 5, 30] + [0, 40, -200]).astype(np.float32)
    got = sliding_cmvn(x, window=window, center=center, min_window=min_window, norm_vars=norm_vars)
    assert got.shape == x.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, _sliding_cmvn_loop(x, window, center, min_window, norm_vars),
                               rtol=1e-4, atol=1e-4)


def test_sliding_cmvn_equals_utterance_cmvn_when_window_covers_utterance():
    x = RNG.normal(size=(80, 4)).astype(np.float32)
    np.testing.assert_allclose(sliding_cmvn(x, window=600), cmvn(x), atol=1e-5)
    np.testing.assert_allclose(sliding_cmvn(x, window=600, norm_vars=True), cmvn(x, norm_vars=True), atol=1e-4)


# ------------------------------------------------------------------------------------------------ warping

def _warping_loop(x, window):
    T, D = x.shape
    half = window // 2
    out = np.zeros((T, D))
    for t in range(T):
        w = x[max(0, t - half):min(T, t + window - half)]
        n = len(w)
        for d in range(D):
            r = 1 + np.sum(w[:, d] < x[t, d]) + 0.5 * (np.sum(w[:, d] == x[t, d]) - 1)
            out[t, d] = normal.ppf((r - 0.5) / n)
    return out


@pytest.mark.parametrize("T,window", [(1, 301), (10, 5), (400, 301), (57, 8)])
def test_feature_warping_matches_direct_loop(T, window):
    x = RNG.normal(size=(T, 3)).astype(np.float32) * [1, 10, 100]
    x[T // 2:T // 2 + 3, 0] = x[T // 2, 0]  # ties
    np.testing.assert_allclose(feature_warping(x, window=window, block_frames=64), _warping_loop(x, window),
                               rtol=1e-5, atol=1e-5)


def test_feature_warping_is_rank_based():
    x = RNG.normal(size=(200, 2))
    y = feature_warping(x, window=51)
    np.testing.assert_allclose(feature_warping(np.exp(3 * x + 1), window=51), y, atol=1e-6)
    # the centre frame of a full window of distinct values is one of the N standard-normal quantiles
    quantiles = normal.ppf((np.arange(1, 52) - 0.5) / 51)
    assert np.min(np.abs(quantiles[None, :] - y[100:101, :].T), axis=1).max() < 1e-5


# ------------------------------------------------------------------------------------------------ config

def test_read_config_types_comments_and_aliases(tmp_path):
    conf = tmp_path / "mfcc.conf"
    conf.write_text("# MFCC options\n\n--num-ceps=20   # cepstra\n--use-energy=false\n--low-freq=20\n"
                    "--high-freq=-400.5\n--window-type=hamming\n--frame-length=25\n--snip-edges\n"
                    "--num-ceps=23\n  --preemphasis-coefficient=0.95\n")
    assert read_config(conf) == {"num_ceps": 23, "use_energy": False, "low_freq": 20, "high_freq": -400.5,
                                 "window": "hamming", "frame_length_ms": 25, "snip_edges": True, "preemph": 0.95}


@pytest.mark.parametrize("line", ["num-ceps=20", "--=3", "-x=1", "--num ceps=3"])
def test_read_config_malformed_line_names_file_and_line(tmp_path, line):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"--num-ceps=20\n# ok\n{line}\n")
    with pytest.raises(SpkrecError, match=r"bad\.conf:3: "):
        read_config(conf)


def test_read_config_missing_file(tmp_path):
    with pytest.raises(SpkrecError, match="not found"):
        read_config(tmp_path / "nope.conf")


def test_feature_types():
    assert set(FEATURE_TYPES) == {"mfcc", "fbank", "plp", "rasta-plp", "lpc", "lpcc", "lfcc", "cqcc"}
