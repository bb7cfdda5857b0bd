"""Residual covariance (Sigma) re-estimation, second-order statistics, minimum Gaussian count and the
held-out over-fitting check of the i-vector extractor, against brute-force numpy loops and real speech."""
import glob
import logging
import os

import numpy as np
import pytest
from scipy.stats import multivariate_normal

from spkrec.errors import SpkrecError
from spkrec.gmm import DiagGMM
from spkrec.ivector import FullGMM, IvectorExtractor, accumulate_stats
from spkrec.parallel import ParallelConfig

from test_ivector import _mfcc, random_full_gmm, sample

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(4)
    C, D = 3, 2
    w, m, S = random_full_gmm(rng, C, D)
    full = FullGMM.from_params(w, m, S)
    diag = DiagGMM.from_params(w, m, np.diagonal(S, axis1=1, axis2=2).copy())
    # utterances with a speaker shift, so T and the residual covariance have something to explain
    utts = {}
    for i in range(16):
        X = sample(rng, w, m, S, int(rng.integers(25, 50)))[0]
        utts[f"u{i:02d}"] = (X + rng.normal(size=D) * 0.8).astype(np.float32)
    return full, diag, utts


def slow_second_order(ubm, X):
    """Per-frame loops: exact posteriors (no pruning: num_gselect = C, min_post = 0), N, F, S."""
    weights, means = ubm.weights_, ubm.means_
    full = isinstance(ubm, FullGMM)
    C, D = means.shape
    N, F = np.zeros(C), np.zeros((C, D))
    S = np.zeros((C, D, D)) if full else np.zeros((C, D))
    for x in X.astype(np.float64):
        cov = [ubm.covariances_[c] if full else np.diag(ubm.variances_[c]) for c in range(C)]
        ll = np.array([np.log(weights[c]) + multivariate_normal(means[c], cov[c]).logpdf(x) for c in range(C)])
        post = np.exp(ll - ll.max())
        post /= post.sum()
        for c in range(C):
            d = x - means[c]
            N[c] += post[c]
            F[c] += post[c] * d
            S[c] += post[c] * (np.outer(d, d) if full else d * d)
    return N, F, S


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_second_order_stats_match_slow_loop(toy, kind):
    full, diag, utts = toy
    ubm = full if kind == "full" else diag
    ids = sorted(utts)
    N, F, S = accumulate_stats(ubm, utts, ids, num_gselect=3, min_post=0.0, second_order=True)
    ref = [slow_second_order(ubm, utts[u]) for u in ids]
    np.testing.assert_allclose(N, [r[0] for r in ref], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(F, [r[1] for r in ref], rtol=1e-4, atol=2e-4)
    assert S.dtype == np.float64 and S.shape == ((3, 2, 2) if kind == "full" else (3, 2))
    np.testing.assert_allclose(S, sum(r[2] for r in ref), rtol=1e-4, atol=1e-3)
    _, _, S2 = accumulate_stats(ubm, utts, ids, ParallelConfig(nj=2), num_gselect=3, min_post=0.0, second_order=True)
    np.testing.assert_array_equal(S2, S)
    N0, F0 = accumulate_stats(ubm, utts, ids, num_gselect=3, min_post=0.0)  # N, F unchanged by the option
    np.testing.assert_array_equal(N0, N)
    np.testing.assert_array_equal(F0, F)


def brute_force_em(ubm, stats, T, num_iters, offset, floor_factor=0.1):
    """Textbook EM with explicit per-utterance posteriors (np.linalg.inv, float64) for T and Sigma;
    returns T, Sigma and the objective (relative to T = 0, UBM Sigma) per utterance of each iteration."""
    full = isinstance(ubm, FullGMM)
    Sig0 = np.array(ubm.covariances_ if full else [np.diag(v) for v in ubm.variances_])
    Sig = Sig0.copy()
    C, D, R = T.shape
    mu0 = np.zeros(R)
    mu0[0] = offset
    S_tot = sum(s for _, _, s in stats)
    S_tot = S_tot if full else np.array([np.diag(v) for v in S_tot])
    history = []
    for _ in range(num_iters):
        Cacc, Aacc, Ntot, obj = np.zeros((C, D, R)), np.zeros((C, R, R)), np.zeros(C), 0.0
        for N, F, Su in stats:
            Su = Su if full else np.array([np.diag(v) for v in Su])
            L = np.eye(R) + sum(N[c] * T[c].T @ np.linalg.inv(Sig[c]) @ T[c] for c in range(C))
            b = mu0 + sum(T[c].T @ np.linalg.inv(Sig[c]) @ F[c] for c in range(C))
            Linv = np.linalg.inv(L)
            Ew = Linv @ b
            Eww = Linv + np.outer(Ew, Ew)
            obj += 0.5 * b @ Linv @ b - 0.5 * np.linalg.slogdet(L)[1] - 0.5 * mu0 @ mu0
            for c in range(C):
                obj -= 0.5 * (N[c] * (np.linalg.slogdet(Sig[c])[1] - np.linalg.slogdet(Sig0[c])[1])
                              + np.trace((np.linalg.inv(Sig[c]) - np.linalg.inv(Sig0[c])) @ Su[c]))
                Cacc[c] += np.outer(F[c], Ew)
                Aacc[c] += N[c] * Eww
                Ntot[c] += N[c]
        history.append(obj / len(stats))
        T = np.array([Cacc[c] @ np.linalg.inv(Aacc[c]) for c in range(C)])
        new = np.array([(S_tot[c] - T[c] @ Cacc[c].T - Cacc[c] @ T[c].T + T[c] @ Aacc[c] @ T[c].T) / Ntot[c]
                        for c in range(C)])
        new = 0.5 * (new + new.transpose(0, 2, 1))
        floor = floor_factor * S_tot.sum(0) / Ntot.sum()
        for c in range(C):  # Kaldi SpMatrix::ApplyFloor: eigenvalues of floor^-1/2 Sigma floor^-1/2 >= 1
            if full:
                Lf = np.linalg.cholesky(floor)
                lam, V = np.linalg.eigh(np.linalg.inv(Lf) @ new[c] @ np.linalg.inv(Lf).T)
                new[c] = Lf @ V @ np.diag(np.maximum(lam, 1.0)) @ V.T @ Lf.T
            else:
                new[c] = np.diag(np.maximum(np.diag(new[c]), np.diag(floor)))
        Sig = new
    return T, (Sig if full else np.array([np.diag(s) for s in Sig])), history


@pytest.mark.parametrize("kind,offset", [("full", 0.0), ("full", 5.0), ("diag", 0.0), ("diag", 5.0)])
def test_sigma_reestimation_matches_brute_force(toy, kind, offset):
    full, diag, utts = toy
    ubm = full if kind == "full" else diag
    ids = sorted(utts)
    N, F, S = accumulate_stats(ubm, utts, ids, second_order=True)
    per_utt = [accumulate_stats(ubm, {u: utts[u]}, [u], second_order=True) for u in ids]
    stats = [(n[0].astype(np.float64), f[0].astype(np.float64), s) for n, f, s in per_utt]
    R = 2
    ex = IvectorExtractor(n_components=R, n_iter=4, min_divergence=False, prior_offset=offset, update_variances=True,
                          batch_size=5, random_state=3).fit(N, F, ubm, S=S)
    # the same random start as fit: G ~ N(0, 0.25 / R), T = chol(Sigma0) G (first column 0 with an offset)
    G = np.random.default_rng(3).standard_normal((3, 2, R)) * (0.5 / np.sqrt(R))
    if offset:
        G[:, :, 0] = 0.0
    cov0 = full.covariances_ if kind == "full" else np.array([np.diag(v) for v in diag.variances_])
    T0 = np.linalg.cholesky(cov0) @ G
    T_ref, Sig_ref, hist_ref = brute_force_em(ubm, stats, T0, 4, offset)
    np.testing.assert_allclose(ex.objective_history_, hist_ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(ex.covariances_, Sig_ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ex.T_, T_ref, rtol=1e-6, atol=1e-8)
    assert not np.allclose(ex.covariances_, ex.ubm_covariances_)  # Sigma did move
    assert np.all(np.diff(ex.objective_history_) >= -1e-9)
    # the objective of the fitted model needs S once Sigma changed; nj does not change a bit
    with pytest.raises(SpkrecError, match="second-order"):
        ex.objective(N, F)
    assert ex.objective(N, F, S=S) >= ex.objective_history_[-1] - 1e-9
    ex2 = IvectorExtractor(n_components=R, n_iter=4, min_divergence=False, prior_offset=offset, update_variances=True,
                           batch_size=5, random_state=3, parallel=ParallelConfig(nj=2)).fit(N, F, ubm, S=S)
    np.testing.assert_array_equal(ex2.T_, ex.T_)
    np.testing.assert_array_equal(ex2.covariances_, ex.covariances_)


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize("offset,min_div", [(100.0, True), (0.0, False)])
def test_em_with_variance_update_never_decreases(toy, kind, offset, min_div):
    full, diag, utts = toy
    ubm = full if kind == "full" else diag
    N, F, S = accumulate_stats(ubm, utts, second_order=True)
    ex = IvectorExtractor(n_components=2, n_iter=10, min_divergence=min_div, prior_offset=offset, update_variances=True,
                          batch_size=4).fit(N, F, ubm, S=S)
    hist = np.array(ex.objective_history_)
    assert np.all(np.diff(hist) >= -1e-9 * np.abs(hist[1:])), hist
    fixed = IvectorExtractor(n_components=2, n_iter=10, min_divergence=min_div, prior_offset=offset,
                             batch_size=4).fit(N, F, ubm)
    assert hist[-1] > fixed.objective_history_[-1]  # a free Sigma explains more than the UBM's
    with pytest.raises(SpkrecError, match="second-order"):
        IvectorExtractor(n_components=2, update_variances=True).fit(N, F, ubm)


def test_objective_with_sigma_is_marginal_likelihood_of_frames():
    """Hard alignments: objective(T, Sigma) = log p(frames | T, Sigma) - log p(frames | T = 0, Sigma0)
    exactly (the stacked frames are Gaussian with covariance blockdiag(Sigma) + T T')."""
    rng = np.random.default_rng(6)
    C, D, R = 3, 2, 2
    covs0 = np.array([np.eye(D) * 0.5, [[1.0, 0.3], [0.3, 0.8]], np.eye(D) * 2.0])
    means = rng.normal(size=(C, D))
    align = np.array([0, 0, 1, 2, 2, 2, 1, 0])
    X = rng.normal(size=(len(align), D))
    N = np.bincount(align, minlength=C)[None].astype(np.float32)
    F = np.zeros((1, C, D))
    S = np.zeros((C, D, D))
    for t, c in enumerate(align):
        F[0, c] += X[t] - means[c]
        S[c] += np.outer(X[t] - means[c], X[t] - means[c])

    def exact(T, covs, offset):
        M = np.concatenate([T[c] for c in align])
        mean = np.concatenate([means[c] for c in align]) + M[:, 0] * offset
        cov = M @ M.T
        for t, c in enumerate(align):
            cov[t * D:(t + 1) * D, t * D:(t + 1) * D] += covs[c]
        return multivariate_normal(mean, cov).logpdf(X.ravel())

    base = exact(np.zeros((C, D, R)), covs0, 0.0)
    for seed, offset in [(0, 0.0), (1, 2.0)]:
        r = np.random.default_rng(seed)
        A = r.normal(size=(C, D, D)) * 0.3 + np.eye(D)
        ex = IvectorExtractor(n_components=R, prior_offset=offset)
        ex.ubm_covariances_ = covs0
        ex.covariances_ = A @ A.transpose(0, 2, 1)
        ex.T_ = r.normal(size=(C, D, R))
        ex.prior_offset_ = offset
        got = ex.objective(N, F.astype(np.float32), S=S)
        np.testing.assert_allclose(got, exact(ex.T_, ex.covariances_, offset) - base, rtol=1e-6, atol=1e-6)
        # diagonal covariances: the same identity
        ex.ubm_covariances_ = np.diagonal(covs0, axis1=1, axis2=2).copy()
        ex.covariances_ = np.diagonal(ex.covariances_, axis1=1, axis2=2).copy()
        ex.T_ = ex.T_.copy()  # a new T_: the whitened-T cache is rebuilt for the new covariances
        got = ex.objective(N, F.astype(np.float32), S=np.diagonal(S, axis1=1, axis2=2).copy())
        ref = exact(ex.T_, [np.diag(v) for v in ex.covariances_], offset) - exact(
            np.zeros((C, D, R)), [np.diag(v) for v in ex.ubm_covariances_], 0.0)
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_variance_floor(toy):
    full, _, utts = toy
    N, F, S = accumulate_stats(full, utts, second_order=True)
    ex = IvectorExtractor(n_components=2, n_iter=3, update_variances=True, variance_floor_factor=0.8).fit(N, F, full, S=S)
    floor = 0.8 * S.sum(0) / N.sum()
    for c in range(3):  # Sigma_c - floor is positive semi-definite
        assert np.linalg.eigvalsh(ex.covariances_[c] - floor).min() > -1e-6
    assert any(np.linalg.eigvalsh(ex.covariances_[c] - floor).min() < 1e-6 for c in range(3))  # it did bind


def test_variance_update_save_load_and_archive(tmp_path, toy):
    from spkrec.ivector import StatsArchive, extract_ivectors, write_stats
    full, _, utts = toy
    ids = sorted(utts)
    N, F, S = accumulate_stats(full, utts, ids, second_order=True)
    archive = write_stats(full, utts, ids, tmp_path / "stats", batch_size=3, second_order=True)
    np.testing.assert_allclose(archive.second_order(), S, rtol=1e-12)
    again = StatsArchive.from_dir(tmp_path / "stats")
    np.testing.assert_array_equal(again.second_order(), archive.second_order())
    kw = dict(n_components=2, n_iter=3, update_variances=True, batch_size=3)
    a = IvectorExtractor(**kw).fit(archive, ubm=full)
    b = IvectorExtractor(**kw, parallel=ParallelConfig(nj=2)).fit(again, ubm=full)
    np.testing.assert_array_equal(a.T_, b.T_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    ref = IvectorExtractor(**kw).fit(N, F, full, S=S)
    np.testing.assert_allclose(a.T_, ref.T_, rtol=1e-7, atol=1e-9)
    assert a.objective(archive) == pytest.approx(a.objective_history_[-1], abs=50)  # reads S from the archive
    a.save(tmp_path / "ex.npz")
    loaded = IvectorExtractor.load(tmp_path / "ex.npz")
    np.testing.assert_array_equal(loaded.covariances_, a.covariances_)
    np.testing.assert_array_equal(loaded.ubm_covariances_, full.covariances_)
    assert loaded.update_variances is True
    np.testing.assert_array_equal(loaded.transform(N, F), a.transform(N, F))
    np.testing.assert_array_equal(extract_ivectors(loaded, full, utts, ids), a.transform(N, F))
    plain = write_stats(full, utts, ids, tmp_path / "plain", batch_size=3)
    with pytest.raises(SpkrecError, match="second_order.npz"):
        IvectorExtractor(**kw).fit(plain, ubm=full)


def test_min_gauss_count_drops_gaussians(toy, caplog):
    from spkrec.ivector import extract_ivectors
    full, diag, utts = toy
    # a fourth Gaussian far from the data: (almost) no occupancy
    w = np.append(full.weights_, 0.05)
    m = np.vstack([full.means_, [40.0, 40.0]])
    for ubm in (FullGMM.from_params(w / w.sum(), m, np.concatenate([full.covariances_, np.eye(2)[None]])),
                DiagGMM.from_params(w, m, np.vstack([diag.variances_, [1.0, 1.0]]))):
        ids = sorted(utts)
        N, F, S = accumulate_stats(ubm, utts, ids, second_order=True)
        assert N[:, 3].sum() < 1.0 and N[:, :3].sum(0).min() > 50
        kw = dict(n_components=2, n_iter=3, batch_size=4, update_variances=True)
        with caplog.at_level(logging.INFO, logger="spkrec"):
            ex = IvectorExtractor(min_gauss_count=10, **kw).fit(N, F, ubm, S=S)
        assert "dropped 1 of 4 Gaussians" in caplog.text
        caplog.clear()
        np.testing.assert_array_equal(ex.kept_gaussians_, [0, 1, 2])
        assert ex.T_.shape == (3, 2, 2) and len(ex.covariances_) == 3
        small = ex.kept_ubm(ubm)
        assert small.weights_.shape == (3,) and np.isclose(small.weights_.sum(), 1.0)
        np.testing.assert_array_equal(small.means_, ubm.means_[:3])
        # the same model as training on the kept Gaussians only
        ref = IvectorExtractor(**kw).fit(N[:, :3], F[:, :3], small, S=S[:3])
        np.testing.assert_array_equal(ex.T_, ref.T_)
        np.testing.assert_array_equal(ex.covariances_, ref.covariances_)
        # extraction statistics come from the kept UBM
        N3, F3 = accumulate_stats(small, utts, ids)
        np.testing.assert_array_equal(extract_ivectors(ex, small, utts, ids), ex.transform(N3, F3))
        assert IvectorExtractor(min_gauss_count=0.5, **kw).fit(N, F, ubm, S=S).T_.shape[0] == 3
        with pytest.raises(SpkrecError, match="not positive definite"):  # why a default above 0 helps
            IvectorExtractor(**kw).fit(N, F, ubm, S=S)
        with pytest.raises(SpkrecError, match="min-gauss-count"):
            IvectorExtractor(min_gauss_count=1e9, **kw).fit(N, F, ubm, S=S)


# ---------------------------------------------------------------------------------------- over-fitting check
@pytest.fixture(scope="module")
def speech():
    files = sorted(glob.glob(os.path.join(ROOT, "data", "so762-mini", "WAVE", "*", "*.flac")))
    if not files:
        pytest.skip("data/so762-mini not present")
    spk_of = {os.path.basename(f)[:-5]: os.path.basename(os.path.dirname(f)) for f in files}
    speakers = sorted(set(spk_of.values()))[:20]
    feats = {os.path.basename(f)[:-5]: _mfcc(f) for f in files if spk_of[os.path.basename(f)[:-5]] in speakers}
    train = [u for u in sorted(feats) if spk_of[u] in speakers[:8]]  # 8 speakers: few utterances
    held = [u for u in sorted(feats) if spk_of[u] in speakers[8:]]  # other speakers
    return feats, train, held


@pytest.mark.parametrize("num_gauss,tv_dim,update,oversized", [
    (8, 5, False, False), (16, 10, False, False),  # right-sized: the held-out objective rises and stays > 0
    (64, 60, True, True), (128, 100, False, True),  # oversized for 48 utterances: negative / falling
])
def test_overfitting_check_on_real_speech(speech, caplog, num_gauss, tv_dim, update, oversized):
    from threadpoolctl import threadpool_limits
    feats, train, held = speech
    with threadpool_limits(limits=1, user_api="blas"):
        X = np.concatenate([feats[u] for u in train])
        ubm = DiagGMM(n_components=num_gauss, n_iter=4).fit(X[::2])
        N, F, S = accumulate_stats(ubm, feats, train, second_order=True)
        heldout = accumulate_stats(ubm, feats, held, second_order=True)
        with caplog.at_level(logging.WARNING, logger="spkrec"):
            ex = IvectorExtractor(n_components=tv_dim, n_iter=5, update_variances=update).fit(N, F, ubm, S=S,
                                                                                          heldout=heldout)
    h = ex.heldout_objective_history_
    print(num_gauss, tv_dim, update, np.round(ex.objective_history_, 1), np.round(h, 1))
    assert len(h) == 5
    assert np.all(np.diff(ex.objective_history_) >= -1e-9 * np.abs(ex.objective_history_[1:]))  # training rises
    warnings = [r.getMessage() for r in caplog.records if "held-out objective" in r.getMessage()]
    if oversized:
        assert len(warnings) == 1 and "too large" in warnings[0] and "--tv-dim" in warnings[0], warnings
        assert h[-1] < 0 or h[-1] < max(h) - 0.01 * abs(max(h))
    else:
        assert warnings == [] and ex.overfitting_warning() is None
        assert h[-1] > 0 and h[-1] >= h[0]


def test_non_finite_statistics_stop_training_with_the_iteration():
    from spkrec.gmm import DiagGMM
    from spkrec.errors import SpkrecError
    from spkrec.ivector import IvectorExtractor
    rng = np.random.default_rng(0)
    ubm = DiagGMM.from_params(np.full(2, 0.5), rng.standard_normal((2, 3)), np.ones((2, 3)))
    N = np.abs(rng.standard_normal((20, 2))) * 10 + 1
    F = rng.standard_normal((20, 2, 3))
    F[3, 1, 2] = np.nan
    with pytest.raises(SpkrecError, match="iteration 0: non-finite"):
        IvectorExtractor(n_components=2, n_iter=2).fit(N, F, ubm=ubm)
