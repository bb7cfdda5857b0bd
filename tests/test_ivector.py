"""Full-covariance UBM, Baum-Welch statistics, T-matrix EM and i-vector extraction against slow
textbook loops, closed forms and real speech."""
import glob
import os

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from spkrec.errors import SpkrecError
from spkrec.gmm import DiagGMM
from spkrec.ivector import FullGMM, IvectorExtractor, accumulate_stats, pool_stats, utterance_stats
from spkrec.parallel import ParallelConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def random_full_gmm(rng, C, D, spread=2.0):
    means = rng.normal(size=(C, D)) * spread
    A = rng.normal(size=(C, D, D)) * 0.4 + np.eye(D)
    covs = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(D)
    weights = rng.dirichlet(np.full(C, 5.0))
    return weights, means, covs


def sample(rng, weights, means, covs, n):
    comp = rng.choice(len(weights), size=n, p=weights)
    X = np.array([rng.multivariate_normal(means[c], covs[c]) for c in comp])
    return X.astype(np.float32), comp


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(1)
    C, D = 6, 3
    w, m, S = random_full_gmm(rng, C, D)
    full = FullGMM.from_params(w, m, S)
    diag = DiagGMM.from_params(w, m, np.diagonal(S, axis1=1, axis2=2).copy())
    utts = {f"u{i:02d}": sample(rng, w, m, S, int(rng.integers(20, 60)))[0] for i in range(24)}
    return full, diag, utts


# ---------------------------------------------------------------------------------------- full UBM
def test_full_loglikes_match_scipy(toy):
    full, _, utts = toy
    X = utts["u00"]
    ll = full.log_likelihood_components(X)
    ref = np.stack([np.log(full.weights_[c]) + multivariate_normal(full.means_[c], full.covariances_[c]).logpdf(X)
                    for c in range(full.n_components_)], axis=1)
    np.testing.assert_allclose(ll, ref, rtol=1e-5, atol=2e-4)
    np.testing.assert_allclose(full.predict_proba(X).sum(1), 1.0, rtol=1e-5)


def test_full_ubm_em_recovers_model_and_is_monotone():
    rng = np.random.default_rng(2)
    C, D = 4, 3
    w = np.full(C, 0.25)
    m = np.array([[0, 0, 0], [6, 0, 0], [0, 6, 0], [0, 0, 6]], float)
    A = rng.normal(size=(C, D, D)) * 0.5 + np.eye(D)
    S = A @ A.transpose(0, 2, 1)
    X, _ = sample(rng, w, m, S, 8000)
    diag = DiagGMM.from_params(w, m + 0.3, np.full((C, D), 1.5))
    loader = {i: X[i * 1000:(i + 1) * 1000] for i in range(8)}
    model = FullGMM(n_iter=5, num_gselect=3).fit(loader, diag_ubm=diag)
    hist = model.log_likelihood_history_
    assert len(hist) == 6
    assert all(b >= a - 1e-6 for a, b in zip(hist, hist[1:])), hist
    np.testing.assert_allclose(model.means_, m, atol=0.15)
    np.testing.assert_allclose(model.covariances_, S, atol=0.1 * np.abs(S).max())
    # arrays and loaders give the same model
    model_nj2 = FullGMM(n_iter=5, num_gselect=3, parallel=ParallelConfig(nj=2)).fit(loader, diag_ubm=diag)
    np.testing.assert_array_equal(model_nj2.covariances_, model.covariances_)
    model2 = FullGMM(n_iter=5, num_gselect=3).fit(X, diag_ubm=diag)
    np.testing.assert_allclose(model2.covariances_, model.covariances_, rtol=1e-4, atol=1e-5)


def test_full_ubm_em_matches_sklearn_without_selection():
    from sklearn.mixture import GaussianMixture
    rng = np.random.default_rng(4)
    w, m, S = random_full_gmm(rng, 3, 2, spread=1.5)
    X, _ = sample(rng, w, m, S, 1500)
    v0 = np.full((3, 2), 2.0)
    m0 = m + 0.5
    diag = DiagGMM.from_params(np.full(3, 1 / 3), m0, v0)
    ours = FullGMM(n_iter=4, num_gselect=3, variance_floor=1e-8, max_condition=1e12).fit(X, diag_ubm=diag)
    ref = GaussianMixture(3, covariance_type="full", max_iter=4, tol=0, reg_covar=0, weights_init=np.full(3, 1 / 3),
                          means_init=m0, precisions_init=np.array([np.diag(1 / v) for v in v0])).fit(X.astype(np.float64))
    np.testing.assert_allclose(ours.weights_, ref.weights_, rtol=1e-4)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ours.covariances_, ref.covariances_, rtol=1e-3, atol=1e-4)


def test_full_ubm_variance_floor():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 3)).astype(np.float32)
    X[:, 2] = X[:, 0] * 2.0  # singular covariance
    diag = DiagGMM.from_params(np.array([0.5, 0.5]), np.array([[-1.0, 0, 0], [1.0, 0, 0]]), np.ones((2, 3)))
    model = FullGMM(n_iter=2, num_gselect=2, variance_floor=0.05).fit(X, diag_ubm=diag)
    eig = np.linalg.eigvalsh(model.covariances_)
    assert eig.min() >= 0.05 * (1 - 1e-6)


def test_full_ubm_save_load(tmp_path, toy):
    full, diag, utts = toy
    model = FullGMM(n_iter=2, num_gselect=3).fit(utts, diag_ubm=diag)
    model.save(tmp_path / "full.npz")
    again = FullGMM.load(tmp_path / "full.npz")
    np.testing.assert_array_equal(again.covariances_, model.covariances_)
    np.testing.assert_array_equal(again.log_likelihood_components(utts["u01"]),
                                  model.log_likelihood_components(utts["u01"]))
    assert again.num_gselect == 3 and again.log_likelihood_history_ == model.log_likelihood_history_
    with pytest.raises(SpkrecError):
        IvectorExtractor.load(tmp_path / "full.npz")


# ---------------------------------------------------------------------------------------- statistics
def slow_stats(weights, means, covs, diag_vars, X, num_gselect, min_post):
    """Per-frame, per-Gaussian loops of Kaldi's gselect + posterior pruning."""
    C, D = means.shape
    N = np.zeros(C)
    F = np.zeros((C, D))
    for x in X.astype(np.float64):
        dll = [np.log(weights[c]) - 0.5 * np.sum(np.log(2 * np.pi * diag_vars[c]) + (x - means[c]) ** 2 / diag_vars[c])
               for c in range(C)]
        sel = sorted(range(C), key=lambda c: -dll[c])[:num_gselect]
        ll = {c: (np.log(weights[c]) + multivariate_normal(means[c], covs[c]).logpdf(x)) if covs is not None
              else dll[c] for c in sel}
        top = max(ll.values())
        post = {c: np.exp(v - top) for c, v in ll.items()}
        total = sum(post.values())
        post = {c: p / total for c, p in post.items()}
        best = max(post, key=post.get)
        post = {c: p for c, p in post.items() if p >= min_post or c == best}
        total = sum(post.values())
        for c, p in post.items():
            N[c] += p / total
            F[c] += p / total * (x - means[c])
    return N, F


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("num_gselect,min_post", [(3, 0.025), (6, 0.0), (2, 0.3)])
def test_stats_match_slow_loop(toy, kind, num_gselect, min_post):
    full, diag, utts = toy
    ubm = full if kind == "full" else diag
    covs = full.covariances_ if kind == "full" else None
    X = utts["u03"]
    N, F = utterance_stats(ubm, X, num_gselect=num_gselect, min_post=min_post)
    Nr, Fr = slow_stats(full.weights_, full.means_, covs, diag.variances_, X, num_gselect, min_post)
    assert N.dtype == np.float32 and F.shape == (6, 3)
    np.testing.assert_allclose(N, Nr, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(F, Fr, rtol=1e-4, atol=2e-4)


def test_accumulate_stats_parallel_identical_and_pooling(toy):
    full, _, utts = toy
    ids = sorted(utts)
    N1, F1 = accumulate_stats(full, utts, ids)
    N2, F2 = accumulate_stats(full, utts, ids, ParallelConfig(nj=2))
    np.testing.assert_array_equal(N1, N2)
    np.testing.assert_array_equal(F1, F2)
    n5, f5 = utterance_stats(full, utts[ids[5]])
    np.testing.assert_array_equal(N1[5], n5)
    np.testing.assert_allclose(N1.sum(1), [len(utts[u]) for u in ids], rtol=1e-5)
    Ns, Fs = accumulate_stats(full, utts, ids, posterior_scale=0.5)
    np.testing.assert_allclose(Ns, 0.5 * N1, rtol=1e-6)
    groups = {"a": ids[:3], "b": ids[3:5] + ["missing"]}
    gid, Np, Fp = pool_stats(N1, F1, ids, groups)
    assert gid == ["a", "b"]
    np.testing.assert_allclose(Np[1], N1[3] + N1[4], rtol=1e-6)
    np.testing.assert_allclose(Fp[0], F1[:3].sum(0), rtol=1e-5, atol=1e-5)


def test_stats_bad_dimension(toy):
    full, _, _ = toy
    with pytest.raises(SpkrecError, match="u9"):
        accumulate_stats(full, {"u9": np.zeros((10, 4), np.float32)})


# ---------------------------------------------------------------------------------------- extraction
def textbook_ivectors(T, covs, N, F, offset):
    """Explicit loops over Gaussians with np.linalg.inv (Dehak et al. 2011)."""
    C, D, R = T.shape
    mu0 = np.zeros(R)
    mu0[0] = offset
    out, cov_out = [], []
    for n in range(len(N)):
        L = np.eye(R)
        b = mu0.copy()
        for c in range(C):
            Si = np.linalg.inv(covs[c]) if covs.ndim == 3 else np.diag(1.0 / covs[c])
            L += N[n, c] * T[c].T @ Si @ T[c]
            b += T[c].T @ Si @ F[n, c]
        Linv = np.linalg.inv(L)
        out.append(Linv @ b - mu0)
        cov_out.append(Linv)
    return np.array(out), np.array(cov_out)


@pytest.mark.parametrize("kind,offset", [("full", 100.0), ("full", 0.0), ("diag", 0.0)])
def test_extraction_matches_textbook(toy, kind, offset):
    full, diag, utts = toy
    ubm = full if kind == "full" else diag
    N, F = accumulate_stats(ubm, utts)
    ex = IvectorExtractor(n_components=4, n_iter=2, prior_offset=offset, batch_size=5).fit(N, F, ubm)
    ref, ref_cov = textbook_ivectors(ex.T_, ex.covariances_, N.astype(np.float64), F.astype(np.float64),
                                     ex.prior_offset_)
    iv64, cov64 = ex.transform(N, F, return_covariance=True, dtype=np.float64)
    np.testing.assert_allclose(iv64, ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(cov64, ref_cov, rtol=1e-4, atol=1e-6)
    iv32 = ex.transform(N, F)
    assert iv32.dtype == np.float32 and iv32.shape == (len(N), 4)
    np.testing.assert_allclose(iv32, ref, rtol=2e-3, atol=2e-3)


def test_extraction_parallel_identical_and_save_load(tmp_path, toy):
    full, _, utts = toy
    N, F = accumulate_stats(full, utts)
    ex = IvectorExtractor(n_components=5, n_iter=3, batch_size=4).fit(N, F, full)
    iv1 = ex.transform(N, F)
    iv2 = ex.set_params(parallel=ParallelConfig(nj=2)).transform(N, F)
    np.testing.assert_array_equal(iv1, iv2)
    ex.save(tmp_path / "extractor.npz")
    again = IvectorExtractor.load(tmp_path / "extractor.npz")
    np.testing.assert_array_equal(again.transform(N, F), iv1)
    assert again.n_components == 5 and again.objective_history_ == ex.objective_history_
    assert again.prior_offset_ == ex.prior_offset_
    with pytest.raises(SpkrecError, match="do not match"):
        ex.transform(N[:, :3], F[:, :3])


# ---------------------------------------------------------------------------------------- T-matrix EM
@pytest.mark.parametrize("offset,min_div", [(100.0, True), (0.0, True), (100.0, False), (0.0, False)])
def test_tmatrix_em_objective_non_decreasing(toy, offset, min_div):
    full, _, utts = toy
    N, F = accumulate_stats(full, utts)
    ex = IvectorExtractor(n_components=4, n_iter=8, min_divergence=min_div, prior_offset=offset, batch_size=7,
                          random_state=3).fit(N, F, full)
    hist = np.array(ex.objective_history_)
    assert len(hist) == 8
    assert np.all(np.diff(hist) >= -1e-9 * np.abs(hist[1:])), hist
    assert hist[-1] > hist[0] + 1.0
    assert ex.objective(N, F) >= hist[-1] - 1e-9


def test_objective_is_marginal_likelihood_of_frames():
    """With hard alignments the objective differs from the exact log-likelihood of the stacked frames
    (a Gaussian with covariance blockdiag(Sigma) + T T') only by a parameter-free constant."""
    rng = np.random.default_rng(5)
    C, D, R = 3, 2, 2
    covs = np.array([np.eye(D) * 0.5, [[1.0, 0.3], [0.3, 0.8]], np.eye(D) * 2.0])
    means = rng.normal(size=(C, D))
    align = np.array([0, 0, 1, 2, 2, 2, 1])
    X = rng.normal(size=(len(align), D))
    N = np.bincount(align, minlength=C)[None].astype(np.float32)
    F = np.zeros((1, C, D))
    for t, c in enumerate(align):
        F[0, c] += X[t] - means[c]
    ubm = FullGMM.from_params(np.full(C, 1 / C), means, covs)

    def exact(T, offset):
        M = np.concatenate([T[c] for c in align])  # (len*D, R)
        mean = np.concatenate([means[c] for c in align]) + M[:, 0] * offset
        cov = M @ M.T
        for t, c in enumerate(align):
            cov[t * D:(t + 1) * D, t * D:(t + 1) * D] += covs[c]
        return multivariate_normal(mean, cov).logpdf(X.ravel())

    diffs = []
    for seed, offset in [(0, 0.0), (1, 0.0), (2, 3.0), (3, 0.5)]:
        ex = IvectorExtractor(n_components=R, prior_offset=offset)
        ex.covariances_ = covs
        ex.T_ = np.random.default_rng(seed).normal(size=(C, D, R))
        ex.prior_offset_ = offset
        diffs.append(exact(ex.T_, offset) - ex.objective(N, F.astype(np.float32)))
    np.testing.assert_allclose(diffs, diffs[0], rtol=0, atol=1e-6)
    del ubm


def test_tmatrix_same_seed_identical_and_nj(toy):
    full, _, utts = toy
    N, F = accumulate_stats(full, utts)
    kw = dict(n_components=4, n_iter=3, batch_size=5)
    a = IvectorExtractor(random_state=7, **kw).fit(N, F, full)
    b = IvectorExtractor(random_state=7, **kw).fit(N, F, full)
    c = IvectorExtractor(random_state=8, **kw).fit(N, F, full)
    np.testing.assert_array_equal(a.T_, b.T_)
    assert not np.array_equal(a.T_, c.T_)
    d = IvectorExtractor(random_state=7, parallel=ParallelConfig(nj=2), **kw).fit(N, F, full)
    np.testing.assert_array_equal(d.T_, a.T_)
    assert d.objective_history_ == a.objective_history_


# ---------------------------------------------------------------------------------------- out of core
@pytest.mark.parametrize("file_bs,fit_bs,pooled", [(5, 5, False), (3, 5, False), (4, 7, True)])
def test_fit_on_stats_archive_equals_arrays(tmp_path, toy, file_bs, fit_bs, pooled):
    """Statistics written to chunk files give the same T as the arrays, also when batches span files."""
    from spkrec.ivector import StatsArchive, write_stats
    full, _, utts = toy
    ids = sorted(utts)
    N, F = accumulate_stats(full, utts, ids)
    groups = {f"s{i}": ids[i * 3 // 2:i * 3 // 2 + 1 + i % 3] + ["missing"] for i in range(12)} if pooled else None
    if pooled:
        _, N, F = pool_stats(N, F, ids, groups)
    archive = write_stats(full, utts, ids, tmp_path / "stats", groups=groups, batch_size=file_bs)
    assert archive.num_utts == len(N) and len(archive.paths) > 2
    assert [os.path.basename(p) for p in archive.paths] == [f"stats.{k + 1}.npz" for k in range(len(archive.paths))]
    np.testing.assert_array_equal(np.concatenate([archive.load(k)[0] for k in range(len(archive.paths))]), N)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in archive.iter_batches(fit_bs)]), F)
    if pooled:
        assert archive.ids() == list(groups) and len(N) == 12
    kw = dict(n_components=4, n_iter=3, batch_size=fit_bs, random_state=2)
    ref = IvectorExtractor(**kw).fit(N, F, full)
    got = IvectorExtractor(**kw).fit(archive, ubm=full)
    np.testing.assert_array_equal(got.T_, ref.T_)
    assert got.objective_history_ == ref.objective_history_
    assert got.objective(archive) == ref.objective(N, F)  # one E-step pass, from the files
    again = StatsArchive.from_dir(tmp_path / "stats")
    got2 = IvectorExtractor(**kw, parallel=ParallelConfig(nj=2)).fit(again, ubm=full)
    np.testing.assert_array_equal(got2.T_, ref.T_)
    # written with nj=2: the same files
    other = write_stats(full, utts, ids, tmp_path / "stats2", ParallelConfig(nj=2), groups=groups, batch_size=file_bs)
    for a, b in zip(archive.paths, other.paths):
        for x, y in zip(StatsArchive([a]).load(0), StatsArchive([b]).load(0)):
            np.testing.assert_array_equal(x, y)


def test_fit_on_archive_reads_one_file_at_a_time(tmp_path, toy, monkeypatch):
    """The E-step reads each file once per iteration (plus a file shared by two chunks), never all rows at once."""
    from spkrec.ivector import archive as archive_mod
    from spkrec.ivector import write_stats
    full, _, utts = toy
    ids = sorted(utts) * 46  # 1104 rows: 2 E-step chunks of 552 rows (TRAIN_UTTS_PER_CHUNK = 512)
    archive = write_stats(full, utts, ids, tmp_path / "stats", batch_size=4)
    assert len(archive.paths) >= 16
    loads = []
    real_load = archive_mod.StatsArchive.load

    def counting_load(self, k):
        out = real_load(self, k)
        loads.append(len(out[0]))
        return out
    monkeypatch.setattr(archive_mod.StatsArchive, "load", counting_load)
    ex = IvectorExtractor(n_components=3, n_iter=2, batch_size=4).fit(archive, ubm=full)
    assert len(ex.objective_history_) == 2
    assert max(loads) == max(archive.counts) < len(ids)
    assert len(loads) <= 2 * (len(archive.paths) + 1)  # once per file per iteration (chunk borders: +1)
    with pytest.raises(SpkrecError, match="do not match the UBM"):
        IvectorExtractor(n_components=3).fit(archive, ubm=DiagGMM.from_params(np.ones(2) / 2, np.zeros((2, 3)), np.ones((2, 3))))
    with pytest.raises(SpkrecError, match="F=None"):
        IvectorExtractor(n_components=3).fit(archive, archive, full)
    os.remove(archive.paths[1])
    with pytest.raises(SpkrecError, match="stats.2.npz: statistics file not found"):
        IvectorExtractor(n_components=3, n_iter=1).fit(archive, ubm=full)


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_streaming_extraction_equals_stats_then_transform(toy, batch_size):
    from spkrec.ivector import extract_ivectors
    full, diag, utts = toy
    ids = sorted(utts)
    N, F = accumulate_stats(full, utts, ids, num_gselect=4)
    ex = IvectorExtractor(n_components=4, n_iter=2, batch_size=batch_size).fit(N, F, full)
    ref = ex.transform(N, F)
    got = extract_ivectors(ex, full, utts, ids, num_gselect=4)
    assert got.dtype == np.float32 and got.shape == (len(ids), 4)
    np.testing.assert_array_equal(got, ref)
    np.testing.assert_array_equal(extract_ivectors(ex, full, utts, ids, ParallelConfig(nj=2), num_gselect=4), ref)
    assert extract_ivectors(ex, full, utts, []).shape == (0, 4)
    with pytest.raises(SpkrecError, match="does not match"):
        extract_ivectors(ex, DiagGMM.from_params(np.ones(2) / 2, np.zeros((2, 3)), np.ones((2, 3))), utts)


def test_tmatrix_recovers_subspace():
    """Synthetic supervectors in a known 2-dim subspace: the trained T spans it."""
    rng = np.random.default_rng(11)
    C, D, R = 4, 3, 2
    covs = np.tile(np.eye(D) * 0.2, (C, 1, 1))
    T_true = rng.normal(size=(C, D, R))
    n = 300
    w = rng.normal(size=(n, R))
    N = np.full((n, C), 50.0, np.float32)
    noise = rng.normal(size=(n, C, D)) * np.sqrt(50 * 0.2)
    F = (N[:, :, None] * np.einsum("cdr,nr->ncd", T_true, w) + noise).astype(np.float32)
    ubm = FullGMM.from_params(np.full(C, 1 / C), np.zeros((C, D)), covs)
    ex = IvectorExtractor(n_components=R, n_iter=30, prior_offset=0.0).fit(N, F, ubm)
    A = T_true.reshape(C * D, R)
    B = ex.T_.reshape(C * D, R)
    # principal angles between the two column spaces are small
    qa, _ = np.linalg.qr(A)
    qb, _ = np.linalg.qr(B)
    s = np.linalg.svd(qa.T @ qb, compute_uv=False)
    assert s.min() > 0.99
    # and T T' (the model's supervector covariance) matches
    np.testing.assert_allclose(B @ B.T, A @ A.T, atol=0.25 * np.abs(A @ A.T).max())


# ---------------------------------------------------------------------------------------- real speech
def _mfcc(path):
    import soundfile as sf
    sig, rate = sf.read(path, dtype="int16")
    sig = sig.astype(np.float32)
    try:
        from spkrec.features import mfcc
        feats = mfcc(sig, rate, preset="kaldi", num_ceps=20, dither=0.0)
    except (ImportError, AttributeError):  # features not there yet: the independent reference
        import python_speech_features as psf
        feats = psf.mfcc(sig, rate, numcep=20, nfilt=26).astype(np.float32)
    energy = feats[:, 0]
    feats = feats[energy > np.percentile(energy, 30)]  # crude energy VAD
    return ((feats - feats.mean(0)) / (feats.std(0) + 1e-5)).astype(np.float32)


def test_real_speech_ivectors_beat_chance():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(limits=1, user_api="blas"):  # small products: BLAS threads only add overhead
        _real_speech_ivectors_beat_chance()


def _real_speech_ivectors_beat_chance():
    from sklearn.metrics import roc_curve
    files = sorted(glob.glob(os.path.join(ROOT, "data", "so762-mini", "WAVE", "*", "*.flac")))
    if not files:
        pytest.skip("data/so762-mini not present")
    spk_of = {f: os.path.basename(os.path.dirname(f)) for f in files}
    speakers = sorted(set(spk_of.values()))
    feats = {os.path.basename(f)[:-5]: _mfcc(f) for f in files}
    utt_spk = {os.path.basename(f)[:-5]: spk_of[f] for f in files}
    train_spk = set(speakers[:30])
    train = [u for u in sorted(feats) if utt_spk[u] in train_spk]
    evalu = [u for u in sorted(feats) if utt_spk[u] not in train_spk]
    X = np.concatenate([feats[u] for u in train])
    diag = DiagGMM(n_components=32, n_iter=6).fit(X[::2])
    full = FullGMM(n_iter=2).fit(feats, diag_ubm=diag, utt_ids=train)
    N, F = accumulate_stats(full, feats, train)
    ex = IvectorExtractor(n_components=50, n_iter=5).fit(N, F, full)
    Ne, Fe = accumulate_stats(full, feats, evalu)
    iv = ex.transform(Ne, Fe)
    iv = iv - iv.mean(0)
    iv /= np.linalg.norm(iv, axis=1, keepdims=True)
    spk = np.array([utt_spk[u] for u in evalu])
    # enrol each speaker with its first 3 utterances, test the other 3
    enroll, test = {}, []
    for s in sorted(set(spk)):
        idx = np.flatnonzero(spk == s)
        enroll[s] = iv[idx[:3]].mean(0)
        test += list(idx[3:])
    models = np.array([enroll[s] for s in sorted(enroll)])
    scores = (iv[test] @ models.T) / np.linalg.norm(models, axis=1)
    labels = spk[test][:, None] == np.array(sorted(enroll))[None]
    fpr, tpr, _ = roc_curve(labels.ravel(), scores.ravel())
    eer = fpr[np.nanargmin(np.abs(fpr - (1 - tpr)))]
    top1 = np.mean(np.array(sorted(enroll))[scores.argmax(1)] == spk[test])
    print(f"so762-mini i-vector cosine: EER {eer:.3f}, top-1 {top1:.3f}")
    assert eer < 0.25, eer  # chance: 0.5
    assert top1 > 0.3, top1  # chance: 1/30
