"""PLDA: parameter recovery on data drawn from a known model, exact LLR against direct Gaussian ratios."""
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from spkrec.backend import SimplifiedPLDA, TwoCovPLDA
from spkrec.backend import plda as plda_module
from spkrec.errors import SpkrecError

DIM, SPK, SESS = 10, 300, 10


def _spd(rng, d, scale):
    A = rng.standard_normal((d, d))
    return scale * (A @ A.T / d + 0.1 * np.eye(d))


@pytest.fixture(scope="module")
def two_cov_data():
    rng = np.random.default_rng(0)
    B, W = _spd(rng, DIM, 2.0), _spd(rng, DIM, 1.0)
    mean = rng.standard_normal(DIM)
    spk = rng.multivariate_normal(np.zeros(DIM), B, size=SPK)
    sess = rng.multivariate_normal(np.zeros(DIM), W, size=SPK * SESS)
    X = mean + np.repeat(spk, SESS, axis=0) + sess
    y = np.repeat([f"spk{i:03d}" for i in range(SPK)], SESS)
    return dict(X=X, y=y, B=B, W=W, mean=mean, spk=spk, sess=sess)


@pytest.fixture(scope="module")
def two_cov(two_cov_data):
    return TwoCovPLDA(n_iter=10, tol=None).fit(two_cov_data["X"], two_cov_data["y"])


def _rel(A, B):
    return np.linalg.norm(A - B) / np.linalg.norm(B)


def direct_llr(mean, B, W, enroll, test):
    """log N([e_1..e_n; t] | same speaker) - log N([e_1..e_n] | one speaker) - log N(t | B + W), stacked."""
    n, d = enroll.shape
    def joint(k):  # covariance of k vectors of one speaker
        return np.kron(np.eye(k), W) + np.kron(np.ones((k, k)), B)
    stacked = np.concatenate([enroll.ravel(), test])
    same = multivariate_normal(np.tile(mean, n + 1), joint(n + 1)).logpdf(stacked)
    enr = multivariate_normal(np.tile(mean, n), joint(n)).logpdf(enroll.ravel())
    tst = multivariate_normal(mean, B + W).logpdf(test)
    return same - enr - tst


def test_two_cov_recovers_covariances(two_cov, two_cov_data):
    d = two_cov_data
    B_emp = np.cov(d["spk"].T, bias=True)
    W_emp = np.cov(d["sess"].T, bias=True)
    assert _rel(two_cov.between_, d["B"]) < 0.25       # limited by 300 speaker draws
    assert _rel(two_cov.within_, d["W"]) < 0.08
    assert _rel(two_cov.between_, B_emp) < 0.08       # vs the covariance of the actual draws
    assert _rel(two_cov.within_, W_emp) < 0.03
    assert np.linalg.norm(two_cov.mean_ - d["mean"]) < 0.3


def test_two_cov_objective_non_decreasing(two_cov):
    ll = np.array(two_cov.log_likelihoods_)
    assert len(ll) == 11
    assert np.all(np.diff(ll) >= -1e-9)
    assert ll[-1] > ll[0] + 1.0


def test_simultaneous_diagonalisation(two_cov):
    T = two_cov.transform_
    np.testing.assert_allclose(T @ two_cov.within_ @ T.T, np.eye(DIM), atol=1e-9)
    np.testing.assert_allclose(T @ two_cov.between_ @ T.T, np.diag(two_cov.psi_), atol=1e-9)
    assert np.all(np.diff(two_cov.psi_) <= 0)


@pytest.mark.parametrize("n_enroll", [1, 3])
def test_two_cov_llr_matches_direct_gaussian_ratio(two_cov, n_enroll):
    rng = np.random.default_rng(1)
    p = two_cov
    for _ in range(4):
        enroll = p.mean_ + rng.standard_normal((n_enroll, DIM)) * 1.5
        test = p.mean_ + rng.standard_normal(DIM) * 1.5
        expected = direct_llr(p.mean_, p.between_, p.within_, enroll, test)
        got = p.score_pairs(enroll.mean(axis=0, keepdims=True), test[None], n_enroll=n_enroll)
        np.testing.assert_allclose(got[0, 0], expected, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("dense", [True, False])   # False: force the blocked per-trial path
def test_score_matrix_and_trial_list_agree(two_cov, two_cov_data, monkeypatch, dense):
    monkeypatch.setattr(plda_module, "use_dense", lambda rows, cols, pairs: dense)
    X = two_cov_data["X"]
    E, T = X[:30].reshape(10, 3, DIM).mean(axis=1), X[100:140]
    counts = np.array([3, 1, 2, 3, 5, 1, 1, 2, 3, 4])
    S = two_cov.score_pairs(E, T, n_enroll=counts)
    assert S.shape == (10, 40)
    ei, ti = np.meshgrid(np.arange(10), np.arange(40), indexing="ij")
    pairs = (ei.ravel()[::3], ti.ravel()[::3])
    np.testing.assert_allclose(two_cov.score_pairs(E, T, n_enroll=counts, pairs=pairs), S.ravel()[::3], rtol=1e-10,
                               atol=1e-10)
    # one model scored alone equals its row
    np.testing.assert_allclose(two_cov.score_pairs(E[4:5], T, n_enroll=5)[0], S[4], rtol=1e-10, atol=1e-10)


def test_target_trials_score_higher(two_cov, two_cov_data):
    X = two_cov_data["X"]
    E = X[0:SESS * 20:SESS]           # first session of 20 speakers
    T = X[1:SESS * 20:SESS]           # second session of the same speakers
    S = two_cov.score_pairs(E, T)
    tar, non = np.diag(S), S[~np.eye(20, dtype=bool)]
    assert tar.mean() > non.mean() + 5
    # more enrolment vectors sharpen the target LLR on average
    E3 = X[:SESS * 20].reshape(20, SESS, DIM)[:, 2:5].mean(axis=1)
    assert np.diag(two_cov.score_pairs(E3, T, n_enroll=3)).mean() > tar.mean()


def test_two_cov_save_load(two_cov, tmp_path, two_cov_data):
    path = tmp_path / "plda.npz"
    two_cov.save(path)
    back = TwoCovPLDA.load(path)
    X = two_cov_data["X"][:20]
    np.testing.assert_array_equal(back.score_pairs(X[:5], X[5:], n_enroll=2), two_cov.score_pairs(X[:5], X[5:],
                                                                                      n_enroll=2))
    assert back.n_iter == two_cov.n_iter
    with pytest.raises(SpkrecError, match="expected 'SimplifiedPLDA'"):
        SimplifiedPLDA.load(path)


def test_simplified_plda_em_and_llr():
    rng = np.random.default_rng(2)
    d, q, S, n = 8, 3, 200, 6
    V = rng.standard_normal((d, q)) * 1.5
    Sigma = _spd(rng, d, 0.5)
    mean = rng.standard_normal(d)
    counts = rng.integers(2, 2 * n, size=S)        # unequal session counts
    ys = rng.standard_normal((S, q))
    X = mean + np.repeat(ys @ V.T, counts, axis=0) + rng.multivariate_normal(np.zeros(d), Sigma, counts.sum())
    y = np.repeat(np.arange(S), counts)
    p = SimplifiedPLDA(n_speaker_factors=q, n_iter=30).fit(X, y)
    ll = np.array(p.log_likelihoods_)
    assert np.all(np.diff(ll) >= -1e-9) and ll[-1] > ll[0]
    assert p.V_.shape == (d, q)
    assert np.linalg.matrix_rank(p.between_, tol=1e-8) == q
    assert _rel(p.between_, V @ V.T) < 0.3
    assert _rel(p.within_, Sigma) < 0.1
    # the reported log-likelihood is the exact marginal likelihood of the data under the final model
    direct = 0.0
    for s in range(S):
        k = counts[s]
        cov = np.kron(np.eye(k), p.within_) + np.kron(np.ones((k, k)), p.between_)
        direct += multivariate_normal(np.tile(p.mean_, k), cov).logpdf(X[y == s].ravel())
    np.testing.assert_allclose(ll[-1], direct / len(X), rtol=1e-9)
    for n_enroll in (1, 3):
        enroll = X[y == 0][:n_enroll]
        test = X[y == 1][0]
        expected = direct_llr(p.mean_, p.between_, p.within_, enroll, test)
        got = p.score_pairs(enroll.mean(axis=0, keepdims=True), test[None], n_enroll=n_enroll)[0, 0]
        np.testing.assert_allclose(got, expected, rtol=1e-7, atol=1e-7)


def test_simplified_save_load(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((60, 5)) + np.repeat(rng.standard_normal((12, 5)) * 2, 5, axis=0)
    y = np.repeat(np.arange(12), 5)
    p = SimplifiedPLDA(n_speaker_factors=2, n_iter=5).fit(X, y)
    p.save(tmp_path / "s.npz")
    back = SimplifiedPLDA.load(tmp_path / "s.npz")
    np.testing.assert_array_equal(back.V_, p.V_)
    np.testing.assert_array_equal(back.score_pairs(X[:3], X[3:]), p.score_pairs(X[:3], X[3:]))


def test_bad_input_errors(two_cov):
    with pytest.raises(SpkrecError, match="dimension"):
        two_cov.score_pairs(np.zeros((2, DIM + 1)), np.zeros((2, DIM + 1)))
    with pytest.raises(SpkrecError, match="NaN"):
        two_cov.score_pairs(np.full((1, DIM), np.nan), np.zeros((1, DIM)))
    with pytest.raises(SpkrecError, match="labels"):
        TwoCovPLDA().fit(np.zeros((4, 2)), [0, 1])
    with pytest.raises(SpkrecError, match="not fitted"):
        TwoCovPLDA().score_pairs(np.zeros((1, 2)), np.zeros((1, 2)))


def test_training_is_deterministic(two_cov_data):
    X, y = two_cov_data["X"][:600], two_cov_data["y"][:600]
    for make in (lambda: TwoCovPLDA(n_iter=3), lambda: SimplifiedPLDA(4, n_iter=3)):
        a, b = make().fit(X, y), make().fit(X, y)
        np.testing.assert_array_equal(a.between_, b.between_)
        np.testing.assert_array_equal(a.score_pairs(X[:4], X[4:9]), b.score_pairs(X[:4], X[4:9]))


@pytest.mark.parametrize("make", [lambda tol: TwoCovPLDA(n_iter=500, tol=tol),
                                  lambda tol: SimplifiedPLDA(3, n_iter=500, tol=tol)])
def test_em_stops_at_the_tolerance(two_cov_data, make):
    """EM runs until an iteration gains less than ``tol`` per vector, and no further."""
    X, y = two_cov_data["X"], two_cov_data["y"]
    ll = np.array(make(1e-4).fit(X, y).log_likelihoods_)
    gains = np.diff(ll)
    assert 2 < len(ll) < 501
    assert gains[-1] < 1e-4 and np.all(gains[:-1] >= 1e-4)
    longer = np.array(make(None).fit(X, y).log_likelihoods_)
    assert len(longer) == 501 and longer[-1] >= ll[-1] - 1e-9


@pytest.mark.parametrize("make", [lambda: TwoCovPLDA(), lambda: SimplifiedPLDA(2)])
def test_one_vector_per_speaker_is_refused(make):
    X = np.random.default_rng(0).standard_normal((20, 4))
    with pytest.raises(SpkrecError, match="single training vector"):
        make().fit(X, np.arange(20))
