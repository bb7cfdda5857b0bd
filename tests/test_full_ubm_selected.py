"""Full-covariance UBM training from the selected (frame, Gaussian) pairs only: against a brute-force
float64 EM over all Gaussians on data whose top-k Gaussians hold all the posterior mass, the same
numbers for any ``nj``, and an EM objective that never decreases."""
import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from spkrec.gmm import DiagGMM
from spkrec.ivector import FullGMM
from spkrec.parallel import ParallelConfig

C, D, K = 12, 4, 3


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    means = rng.normal(size=(C, D)) * 12.0 + 30.0  # far apart (mass in the top 3) and far from zero
    A = rng.normal(size=(C, D, D)) * 0.4 + np.eye(D)
    covs = A @ A.transpose(0, 2, 1) + 0.1 * np.eye(D)
    comp = rng.integers(0, C, 6000)
    X = means[comp] + np.einsum("tij,tj->ti", np.linalg.cholesky(covs)[comp], rng.normal(size=(6000, D)))
    utts = {f"u{i:02d}": X[i * 250:(i + 1) * 250].astype(np.float32) for i in range(24)}
    diag = DiagGMM.from_params(np.full(C, 1.0 / C), means + 0.4, np.full((C, D), 2.0))
    return utts, diag


def brute_force_em(X, w, m, cov, n_iter):
    """EM over all Gaussians in float64; returns the parameters and the average log-likelihoods."""
    hist = []
    for _ in range(n_iter + 1):
        ll = np.stack([np.log(w[c]) + multivariate_normal(m[c], cov[c]).logpdf(X) for c in range(C)], 1)
        lse = logsumexp(ll, axis=1)
        hist.append(lse.mean())
        if len(hist) > n_iter:
            break
        post = np.exp(ll - lse[:, None])
        N = post.sum(0)
        w = N / N.sum()
        m = post.T @ X / N[:, None]
        cov = np.stack([(post[:, c, None] * (X - m[c])).T @ (X - m[c]) / N[c] for c in range(C)])
    return w, m, cov, np.array(hist)


def fit(utts, diag, nj=1):
    return FullGMM(n_iter=3, num_gselect=K, variance_floor=1e-8, max_condition=1e12, min_gaussian_weight=1e-12,
                   parallel=ParallelConfig(nj=nj)).fit(utts, diag_ubm=diag)


def test_selected_em_equals_all_gaussian_em(data):
    utts, diag = data
    model = fit(utts, diag)
    X = np.concatenate(list(utts.values())).astype(np.float64)
    w, m, cov, hist = brute_force_em(X, diag.weights_, diag.means_, diag.variances_[:, :, None] * np.eye(D), 3)
    np.testing.assert_allclose(model.weights_, w, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(model.means_, m, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(model.covariances_, cov, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(model.log_likelihood_history_, hist, rtol=1e-5)


def test_same_numbers_for_any_nj_and_objective_never_decreases(data):
    utts, diag = data
    one, two = fit(utts, diag, 1), fit(utts, diag, 2)
    for attr in ("weights_", "means_", "covariances_", "log_likelihood_history_"):
        np.testing.assert_array_equal(getattr(one, attr), getattr(two, attr))
    hist = np.asarray(one.log_likelihood_history_)
    assert len(hist) == 4 and np.all(np.diff(hist) >= 0), hist
    assert len(one.iteration_cpu_seconds_) == 4 and min(one.iteration_cpu_seconds_) >= 0
