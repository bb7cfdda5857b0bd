"""spkrec.gmm against brute-force loops, closed forms and real speech (so762-mini)."""
import functools
import os

import numpy as np
import pytest

from spkrec.errors import SpkrecError
from spkrec.gmm import (DiagGMM, SpeakerGMMs, extract_supervectors, gmm_ubm_llr, map_adapt, map_adapt_stats,
                        score_trials, supervector)
from spkrec.gmm.em import collect_stats, mle_update
from spkrec.gmm.core import PackedGMM, accumulate
from spkrec.parallel import ParallelConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINI = os.path.join(ROOT, "data", "so762-mini")


# ----------------------------------------------------------------------------- helpers
def synthetic(T=3000, D=4, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=3.0, size=(5, D))
    scales = rng.uniform(0.3, 1.5, size=(5, D))
    lab = rng.integers(0, 5, size=T)
    return (centers[lab] + scales[lab] * rng.normal(size=(T, D)) + offset).astype(np.float32)


def random_params(C, D, seed=1, offset=0.0):
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 2.0, C)
    return w / w.sum(), rng.normal(scale=2.0, size=(C, D)) + offset, rng.uniform(0.5, 3.0, size=(C, D))


def brute_force(X, w, m, v):
    """Per-frame, per-Gaussian loops in float64: (component loglik, posteriors, N, F, S, total loglik)."""
    X = np.asarray(X, dtype=np.float64)
    T, D = X.shape
    C = len(w)
    ll = np.zeros((T, C))
    for t in range(T):
        for c in range(C):
            s = np.log(w[c])
            for d in range(D):
                s += -0.5 * np.log(2 * np.pi * v[c, d]) - 0.5 * (X[t, d] - m[c, d]) ** 2 / v[c, d]
            ll[t, c] = s
    frame = np.array([np.log(np.sum(np.exp(row - row.max()))) + row.max() for row in ll])
    post = np.exp(ll - frame[:, None])
    N = np.zeros(C)
    F = np.zeros((C, D))
    S = np.zeros((C, D))
    for t in range(T):
        for c in range(C):
            N[c] += post[t, c]
            F[c] += post[t, c] * X[t]
            S[c] += post[t, c] * X[t] ** 2
    return ll, post, N, F, S, frame.sum()


class ListLoader:
    """Picklable loader over a dict of arrays."""

    def __init__(self, parts):
        self.parts = dict(parts)
        self.utt_ids = list(self.parts)

    def __call__(self, utt):
        return self.parts[utt]


def split_loader(X, bounds):
    edges = [0, *bounds, len(X)]
    return ListLoader({f"u{i:03d}": X[a:b] for i, (a, b) in enumerate(zip(edges[:-1], edges[1:]))})


# ----------------------------------------------------------------------------- E-step / M-step
@pytest.mark.parametrize("offset", [0.0, 200.0])
def test_estep_matches_brute_force(offset):
    X = synthetic(T=150, D=3, offset=offset)
    w, m, v = random_params(4, 3, offset=offset)
    ll_ref, post_ref, N, F, S, total = brute_force(X, w, m, v)
    gmm = DiagGMM.from_params(w, m, v)
    np.testing.assert_allclose(gmm.log_likelihood_components(X), ll_ref, rtol=1e-5, atol=2e-3)
    np.testing.assert_allclose(gmm.predict_proba(X), post_ref, atol=1e-4)
    np.testing.assert_allclose(gmm.score_samples(X), np.log(np.exp(ll_ref).sum(1)), rtol=1e-6, atol=2e-3)
    stats = accumulate(PackedGMM(w, m, v), X)
    np.testing.assert_allclose(stats.occupancy, N, rtol=1e-4)
    np.testing.assert_allclose(stats.first, F, rtol=1e-4, atol=1e-3 * (1 + offset))
    np.testing.assert_allclose(stats.second, S, rtol=1e-4)
    assert stats.loglik == pytest.approx(total, rel=1e-6)
    assert stats.num_frames == len(X)


def test_em_update_matches_brute_force():
    X = synthetic(T=200, D=3)
    w, m, v = random_params(4, 3)
    _, _, N, F, S, _ = brute_force(X, w, m, v)
    stats = collect_stats(w, m, v, split_loader(X, [37, 120]), ["u000", "u001", "u002"], chunk_frames=64)
    w2, m2, v2, dead = mle_update(stats, w, m, v, var_floor=np.full(3, 1e-6), weight_floor=1e-10,
                                  min_gauss_frames=1e-3)
    assert len(dead) == 0
    np.testing.assert_allclose(w2, N / len(X), rtol=1e-4)
    np.testing.assert_allclose(m2, F / N[:, None], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(v2, S / N[:, None] - (F / N[:, None]) ** 2, rtol=1e-3, atol=1e-5)


def test_pruning_keeps_posteriors_finite_and_normalised():
    X = synthetic(T=500, D=6) * 10
    gmm = DiagGMM.from_params(*random_params(16, 6))
    post = gmm.predict_proba(X)
    assert np.all(np.isfinite(post))
    np.testing.assert_allclose(post.sum(1), 1.0, rtol=1e-5)
    assert (post == 0).any()                          # far components are pruned to exact zeros


def test_loglik_never_decreases_and_fits_the_data():
    X = synthetic(T=4000, D=4)
    gmm = DiagGMM(n_components=8, n_iter=15, n_iter_per_split=3).fit(X)
    hist = np.array(gmm.loglik_history_)
    assert len(hist) == 15 and np.all(np.isfinite(hist))
    assert np.all(np.diff(hist) >= -1e-6 * np.abs(hist[1:])), hist
    assert gmm.weights_.sum() == pytest.approx(1.0)
    from sklearn.mixture import GaussianMixture
    ref = GaussianMixture(8, covariance_type="diag", random_state=0, n_init=3).fit(X)
    assert gmm.score(X) > ref.score(X) - 0.05


def test_fit_array_matches_frame_source_and_nj():
    X = synthetic(T=3000, D=4, seed=3)
    kw = dict(n_components=4, n_iter=4, n_iter_per_split=2, chunk_frames=500)
    a = DiagGMM(**kw).fit(X)
    loader = split_loader(X, [400, 1100, 1500, 2600])
    b = DiagGMM(**kw).fit(loader)
    for attr in ("weights_", "means_", "variances_"):
        np.testing.assert_allclose(getattr(a, attr), getattr(b, attr), rtol=1e-5, atol=1e-6)
    c = DiagGMM(**kw, parallel=ParallelConfig(nj=2)).fit(loader)
    for attr in ("weights_", "means_", "variances_"):
        np.testing.assert_array_equal(getattr(b, attr), getattr(c, attr))
    assert b.loglik_history_ == c.loglik_history_


def test_same_seed_bit_identical_kmeans():
    X = synthetic(T=2000, D=4, seed=5)
    kw = dict(n_components=6, n_iter=3, init="kmeans")
    a, b = DiagGMM(random_state=7, **kw).fit(X), DiagGMM(random_state=7, **kw).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.variances_, b.variances_)
    c = DiagGMM(random_state=8, **kw).fit(X)
    assert not np.array_equal(a.means_, c.means_)


def test_floors_and_dead_gaussians_never_nan():
    rng = np.random.default_rng(0)
    blob = np.full((200, 3), 5.0)                                   # a constant blob: zero variance
    X = np.concatenate([rng.normal(size=(300, 3)), blob]).astype(np.float32)
    gmm = DiagGMM(n_components=16, n_iter=5, var_floor=1e-2).fit(X)
    assert np.all(np.isfinite(gmm.means_)) and np.all(np.isfinite(gmm.variances_))
    assert np.all(gmm.variances_ >= 1e-2 * X.astype(np.float64).var(0) * (1 - 1e-9))
    assert np.all(gmm.weights_ >= 1e-8)


def test_bad_input_raises_spkrec_error():
    with pytest.raises(SpkrecError):
        DiagGMM(n_components=64).fit(np.zeros((10, 3), np.float32))
    gmm = DiagGMM.from_params(*random_params(2, 3))
    with pytest.raises(SpkrecError, match="expects"):
        gmm.score_samples(np.zeros((5, 4)))
    with pytest.raises(SpkrecError):
        DiagGMM(init="random").fit(synthetic())


# ----------------------------------------------------------------------------- MAP
@pytest.mark.parametrize("adapt", ["m", "mw", "mwv"])
def test_map_matches_closed_form(adapt):
    X = synthetic(T=300, D=3, seed=2)
    w, m, v = random_params(5, 3, seed=4)
    ubm = DiagGMM.from_params(w, m, v)
    r = 10.0
    _, post, N, F, S, _ = brute_force(X, w, m, v)
    Xd = X.astype(np.float64)
    mw, mm, mv = np.zeros(5), np.zeros((5, 3)), np.zeros((5, 3))
    for c in range(5):                                      # Reynolds et al. 2000, eqs. (11)-(14)
        n = post[:, c].sum()
        ex = (post[:, c:c + 1] * Xd).sum(0) / n
        ex2 = (post[:, c:c + 1] * Xd ** 2).sum(0) / n
        alpha = n / (n + r)
        mw[c] = alpha * n / len(X) + (1 - alpha) * w[c]
        mm[c] = alpha * ex + (1 - alpha) * m[c]
        mv[c] = alpha * ex2 + (1 - alpha) * (v[c] + m[c] ** 2) - mm[c] ** 2
    mw /= mw.sum()
    got = map_adapt(ubm, X, relevance_factor=r, adapt=adapt)
    np.testing.assert_allclose(got.means_, mm, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.weights_, mw if "w" in adapt else w, rtol=1e-4)
    np.testing.assert_allclose(got.variances_, mv if "v" in adapt else v, rtol=1e-3)
    batched = map_adapt_stats(ubm, np.stack([N, N * 0]), np.stack([F, F * 0]), np.stack([S, S * 0]), r, adapt)
    np.testing.assert_allclose(batched["means"][0], mm, rtol=1e-6)
    np.testing.assert_allclose(batched["means"][1], m)     # no data: the UBM


def test_map_bad_mode():
    ubm = DiagGMM.from_params(*random_params(2, 3))
    with pytest.raises(SpkrecError):
        map_adapt(ubm, synthetic(D=3), adapt="v")


# ----------------------------------------------------------------------------- scoring
def _toy_system(C=16, D=4):
    X = synthetic(T=3000, D=D, seed=11)
    ubm = DiagGMM(n_components=C, n_iter=3, n_iter_per_split=2).fit(X)
    tests = {f"t{i}": synthetic(T=120, D=D, seed=20 + i) for i in range(3)}
    spk = {f"s{i}": synthetic(T=400, D=D, seed=40 + i) for i in range(2)}
    return ubm, spk, tests


def test_top_c_llr_against_exact():
    ubm, spk, tests = _toy_system()
    model = map_adapt(ubm, spk["s0"])
    X = tests["t0"]
    exact = gmm_ubm_llr(model, ubm, X, top_c=None)
    assert gmm_ubm_llr(model, ubm, X, top_c=16) == exact
    assert gmm_ubm_llr(model, ubm, X, top_c=10) == pytest.approx(exact, abs=1e-3)
    # brute force: average of log p_spk(x) - log p_ubm(x)
    ref = np.mean(np.log(np.exp(brute_force(X, model.weights_, model.means_, model.variances_)[0]).sum(1))
                  - np.log(np.exp(brute_force(X, ubm.weights_, ubm.means_, ubm.variances_)[0]).sum(1)))
    assert exact == pytest.approx(ref, abs=1e-4)


@pytest.mark.parametrize("adapt", ["m", "mwv"])
@pytest.mark.parametrize("top_c", [None, 3, 8])
def test_batched_scoring_matches_single(adapt, top_c):
    ubm, spk, tests = _toy_system()
    from spkrec.gmm.map import enroll_speakers
    models = enroll_speakers(ubm, ListLoader(spk), {s: [s] for s in spk}, relevance_factor=16, adapt=adapt)
    trials = [(s, t, None) for t in tests for s in spk][:-1]
    scores = score_trials(ubm, models, ListLoader(tests), trials, top_c=top_c)
    for (s, t, _), got in zip(trials, scores):
        ref = gmm_ubm_llr(models.model(s, ubm), ubm, tests[t], top_c=top_c)
        assert got == pytest.approx(ref, abs=2e-4)
    with pytest.raises(SpkrecError, match="no model"):
        score_trials(ubm, models, ListLoader(tests), [("nobody", "t0", True)])


# ----------------------------------------------------------------------------- files, supervectors
def test_save_load_round_trip(tmp_path):
    ubm, spk, _ = _toy_system(C=4)
    path = tmp_path / "final.ubm.npz"
    ubm.save(path, meta={"features": {"cmvn": "sliding"}})
    with np.load(path, allow_pickle=False) as z:
        assert "means" in z.files
    back = DiagGMM.load(path)
    for attr in ("weights_", "means_", "variances_", "var_floor_"):
        np.testing.assert_array_equal(getattr(ubm, attr), getattr(back, attr))
    assert back.loglik_history_ == ubm.loglik_history_ and back.meta_["features"]["cmvn"] == "sliding"
    from spkrec.gmm.map import enroll_speakers
    models = enroll_speakers(ubm, ListLoader(spk), {s: [s] for s in spk}, adapt="mw")
    models.save(tmp_path / "models.npz")
    m2 = SpeakerGMMs.load(tmp_path / "models.npz")
    assert m2.ids == models.ids and m2.variances is None and m2.adapt == "mw"
    np.testing.assert_array_equal(m2.means, models.means)
    np.testing.assert_array_equal(m2.weights, models.weights)
    with pytest.raises(SpkrecError):
        SpeakerGMMs.load(path)                                 # a UBM is not a speaker-model file


def test_supervectors():
    ubm, spk, _ = _toy_system(C=8)
    sv = extract_supervectors(ubm, ListLoader(spk), list(spk), relevance_factor=8.0,
                              config=ParallelConfig(nj=1))
    assert sv.shape == (2, 8 * 4) and sv.dtype == np.float32
    for i, s in enumerate(spk):
        adapted = map_adapt(ubm, spk[s], relevance_factor=8.0)
        ref = np.concatenate([np.sqrt(ubm.weights_[c]) * adapted.means_[c] / np.sqrt(ubm.variances_[c])
                              for c in range(8)])
        np.testing.assert_allclose(supervector(adapted, ubm), ref, rtol=1e-12)
        np.testing.assert_allclose(sv[i], ref, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- real speech
@functools.lru_cache(maxsize=None)
def mini_features(num_speakers=40):
    """{spk: [MFCC+deltas per utterance]} of the first so762-mini speakers (psf MFCC, CMN, energy VAD)."""
    import python_speech_features as psf
    from spkrec.io.audio import read_audio
    utt2spk = dict(line.split() for line in open(os.path.join(MINI, "utt2spk")))
    spks = sorted(set(utt2spk.values()))[:num_speakers]
    feats = {}
    for utt, spk in sorted(utt2spk.items()):
        if spk not in spks:
            continue
        sig, rate = read_audio(os.path.join(MINI, "WAVE", f"SPEAKER{spk}", f"{utt}.flac"))
        c = psf.mfcc(sig, rate, numcep=20, nfilt=26, appendEnergy=True)
        energy = c[:, 0]
        c = np.hstack([c, psf.delta(c, 2)])
        c = c[energy > energy.max() - 9.0]                     # keep frames within ~4 nepers of the loudest
        feats.setdefault(spk, []).append((c - c.mean(0)).astype(np.float32))
    return feats


def test_gmm_ubm_identification_on_real_speech():
    feats = mini_features()
    spks = sorted(feats)
    background, evaluation = spks[:20], spks[20:]
    ubm_frames = np.concatenate([x for s in background for x in feats[s]])
    ubm = DiagGMM(n_components=32, n_iter=5, n_iter_per_split=2).fit(ubm_frames)
    assert np.all(np.diff(ubm.loglik_history_) >= -1e-6 * np.abs(ubm.loglik_history_[0]))
    enroll = {s: np.concatenate(feats[s][:4]) for s in evaluation}
    tests = {f"{s}-{i}": feats[s][i] for s in evaluation for i in (4, 5)}
    from spkrec.gmm.map import enroll_speakers
    models = enroll_speakers(ubm, ListLoader(enroll), {s: [s] for s in evaluation}, relevance_factor=16)
    trials = [(s, t, None) for t in tests for s in evaluation]
    scores = score_trials(ubm, models, ListLoader(tests), trials, top_c=5)
    scores = scores.reshape(len(tests), len(evaluation))
    predicted = np.array(evaluation)[scores.argmax(1)]
    truth = np.array([t.split("-")[0] for t in tests])
    accuracy = np.mean(predicted == truth)
    assert accuracy >= 0.6, accuracy                            # chance is 1/20
