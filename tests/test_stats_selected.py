"""Baum-Welch statistics from full-covariance log-likelihoods of the selected Gaussians only: against a
brute-force computation over all Gaussians with the same selection, and the same numbers whatever
block of utterances an utterance is computed in."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from spkrec.gmm.core import selected_full_loglik, top_k
from spkrec.ivector import FullGMM
from spkrec.ivector import stats as stats_mod
from spkrec.ivector.stats import StatsComputer, accumulate_stats, stats_of


@pytest.fixture(scope="module")
def model():
    rng = np.random.default_rng(7)
    C, D = 24, 5
    A = rng.normal(size=(C, D, D)) * 0.3 + np.eye(D)
    covs = A @ A.transpose(0, 2, 1) + 0.05 * np.eye(D)
    means = rng.normal(size=(C, D)) * 1.5 + 10.0  # far from zero: the shift must keep float32 precise
    ubm = FullGMM.from_params(rng.dirichlet(np.full(C, 3.0)), means, covs)
    utts = {f"u{i}": (means[rng.integers(0, C, size=n)] + rng.normal(size=(n, D))).astype(np.float32)
            for i, n in enumerate([1, 2, 7, 40, 33, 0, 90, 3])}
    return ubm, utts


def brute_force(ubm, X, num_gselect, min_post):
    """float64 over ALL Gaussians (scipy), then restricted to the diagonal UBM's top ``num_gselect``."""
    X = X.astype(np.float64)
    C, D = ubm.means_.shape
    var = np.diagonal(ubm.covariances_, axis1=1, axis2=2)
    N, F = np.zeros(C), np.zeros((C, D))
    full = np.stack([np.log(ubm.weights_[c]) + np.atleast_1d(multivariate_normal(ubm.means_[c], ubm.covariances_[c]).logpdf(X))
                     for c in range(C)], 1).reshape(len(X), C)
    diag = np.stack([np.log(ubm.weights_[c]) + np.atleast_1d(multivariate_normal(ubm.means_[c], np.diag(var[c])).logpdf(X))
                     for c in range(C)], 1).reshape(len(X), C)
    for t in range(len(X)):
        sel = np.argsort(-diag[t])[:num_gselect]
        p = np.exp(full[t, sel] - full[t, sel].max())
        p /= p.sum()
        keep = (p >= min_post) | (np.arange(len(p)) == p.argmax())
        p = np.where(keep, p, 0.0) / p[keep].sum()
        N[sel] += p
        F[sel] += p[:, None] * (X[t] - ubm.means_[sel])
    return N, F


@pytest.mark.parametrize("num_gselect,min_post", [(5, 0.025), (1, 0.0), (24, 0.0), (8, 0.2)])
def test_selected_stats_match_brute_force_over_all_gaussians(model, num_gselect, min_post):
    ubm, utts = model
    ids = sorted(utts)
    N, F = accumulate_stats(ubm, utts, ids, num_gselect=num_gselect, min_post=min_post)
    for i, u in enumerate(ids):
        Nr, Fr = brute_force(ubm, utts[u], num_gselect, min_post)
        np.testing.assert_allclose(N[i], Nr, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(F[i], Fr, rtol=1e-4, atol=1e-3)


def test_selected_loglik_equals_full_loglik(model):
    ubm, utts = model
    X = np.concatenate(list(utts.values()))
    comp = StatsComputer(ubm, num_gselect=6)
    Xc = X - comp.center
    sel = np.ascontiguousarray(top_k(ubm.log_likelihood_components(X), 6))
    got = selected_full_loglik(Xc, sel, comp.factor, comp.means_c, comp.const)
    ref = np.stack([np.log(ubm.weights_[c]) + np.atleast_1d(multivariate_normal(ubm.means_[c], ubm.covariances_[c]).logpdf(X))
                    for c in range(len(ubm.weights_))], 1)
    np.testing.assert_allclose(got, np.take_along_axis(ref, sel, 1), rtol=1e-5, atol=1e-3)


@pytest.mark.parametrize("block", [1, 50, 100_000])
def test_statistics_do_not_depend_on_the_block(model, monkeypatch, block):
    ubm, utts = model
    ids = sorted(utts)
    comp = StatsComputer(ubm, num_gselect=5)
    alone = [comp(utts[u]) for u in ids]
    monkeypatch.setattr(stats_mod, "BLOCK_FRAMES", block)
    N, F = stats_of(ids, utts.__getitem__, comp)
    reversed_ids = ids[::-1]
    Nr, Fr = stats_of(reversed_ids, utts.__getitem__, comp)
    for i, u in enumerate(ids):
        np.testing.assert_array_equal(N[i], alone[i][0])
        np.testing.assert_array_equal(F[i], alone[i][1])
        np.testing.assert_array_equal(Nr[reversed_ids.index(u)], N[i])
        np.testing.assert_array_equal(Fr[reversed_ids.index(u)], F[i])
    dense = comp.posteriors(utts["u3"])
    assert dense.shape == (40, 24) and (np.count_nonzero(dense, 1) <= 5).all()
    np.testing.assert_allclose(dense.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(dense.sum(0), alone[ids.index("u3")][0], rtol=1e-5, atol=1e-6)
