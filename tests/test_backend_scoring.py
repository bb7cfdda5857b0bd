"""Cosine scoring, score normalisation against direct per-trial loops, GSV-SVM."""
import numpy as np
import pytest
from sklearn.svm import SVC

from spkrec.backend import GSVSVM, adaptive_snorm, cosine_scores, snorm, tnorm, znorm
from spkrec.backend.base import rowdot_pairs
from spkrec.errors import SpkrecError


def test_cosine_scores():
    rng = np.random.default_rng(0)
    E, T = rng.standard_normal((4, 6)), rng.standard_normal((7, 6))
    S = cosine_scores(E, T)
    for i in range(4):
        for j in range(7):
            assert S[i, j] == pytest.approx(E[i] @ T[j] / np.linalg.norm(E[i]) / np.linalg.norm(T[j]),
                                            abs=1e-12)
    pairs = (np.array([0, 3, 2]), np.array([6, 0, 2]))
    np.testing.assert_allclose(cosine_scores(E, T, pairs), S[pairs], atol=1e-12)
    ei, ti = np.meshgrid(np.arange(4), np.arange(7), indexing="ij")
    np.testing.assert_allclose(rowdot_pairs(E / np.linalg.norm(E, axis=1, keepdims=True),
                                            T / np.linalg.norm(T, axis=1, keepdims=True),
                                            ei.ravel(), ti.ravel(), block=5), S.ravel(), atol=1e-12)
    assert cosine_scores(np.zeros((1, 6)), T)[0, 0] == 0.0


@pytest.fixture(scope="module")
def norm_data():
    rng = np.random.default_rng(1)
    M, K, C = 5, 8, 30
    raw = rng.standard_normal((M, K)) * 2 + 1
    ecoh = rng.standard_normal((M, C)) * rng.uniform(0.5, 2, (M, 1)) + rng.uniform(-1, 1, (M, 1))
    tcoh = rng.standard_normal((K, C + 3)) * rng.uniform(0.5, 2, (K, 1)) + rng.uniform(-1, 1, (K, 1))
    ei, ti = np.meshgrid(np.arange(M), np.arange(K), indexing="ij")
    return raw, ecoh, tcoh, ei.ravel(), ti.ravel()


def _stats(row, top=None):
    vals = sorted(row, reverse=True)[:top] if top else list(row)
    mu = sum(vals) / len(vals)
    return mu, (sum((v - mu) ** 2 for v in vals) / len(vals)) ** 0.5


def test_score_norms_against_per_trial_loops(norm_data):
    raw, ecoh, tcoh, ei, ti = norm_data
    s = raw[ei, ti]
    z, t, sn, asn = [], [], [], []
    for e, k, v in zip(ei, ti, s):
        me, se = _stats(ecoh[e])
        mt, st = _stats(tcoh[k])
        z.append((v - me) / se)
        t.append((v - mt) / st)
        sn.append(0.5 * (z[-1] + t[-1]))
        me, se = _stats(ecoh[e], 10)
        mt, st = _stats(tcoh[k], 10)
        asn.append(0.5 * ((v - me) / se + (v - mt) / st))
    np.testing.assert_allclose(znorm(s, ecoh, ei), z, rtol=1e-12)
    np.testing.assert_allclose(tnorm(s, tcoh, ti), t, rtol=1e-12)
    np.testing.assert_allclose(snorm(s, ecoh, tcoh, ei, ti), sn, rtol=1e-12)
    np.testing.assert_allclose(adaptive_snorm(s, ecoh, tcoh, ei, ti, top_n=10), asn, rtol=1e-12)
    # matrix form equals the trial-list form
    np.testing.assert_allclose(snorm(raw, ecoh, tcoh).ravel(), sn, rtol=1e-12)
    np.testing.assert_allclose(adaptive_snorm(raw, ecoh, tcoh, top_n=10).ravel(), asn, rtol=1e-12)
    # a top-N larger than the cohort is plain S-norm
    np.testing.assert_allclose(adaptive_snorm(s, ecoh, tcoh, ei, ti, top_n=1000), sn, rtol=1e-12)


def test_score_norm_errors(norm_data):
    raw, ecoh, tcoh, ei, ti = norm_data
    with pytest.raises(SpkrecError):
        znorm(raw, ecoh[:2])
    with pytest.raises(SpkrecError):
        adaptive_snorm(raw, ecoh, tcoh, top_n=0)


@pytest.fixture(scope="module")
def svm_data():
    """10 speakers with 3 enrolment and 2 test 'supervectors' each around a speaker centre; 80 background."""
    rng = np.random.default_rng(2)
    D, S = 200, 10
    centres = rng.standard_normal((S + 80, D))
    enr = np.repeat(centres[:S], 3, axis=0) + 0.8 * rng.standard_normal((3 * S, D))
    tst = np.repeat(centres[:S], 2, axis=0) + 0.8 * rng.standard_normal((2 * S, D))
    bg = centres[S:] + 0.8 * rng.standard_normal((80, D))
    return enr, np.repeat([f"spk{i}" for i in range(S)], 3), tst, np.repeat(np.arange(S), 2), bg


def test_gsv_svm_matches_linear_svc_and_separates(svm_data, tmp_path):
    enr, y, tst, tst_spk, bg = svm_data
    svm = GSVSVM(C=1.0).fit(enr, y, bg)
    scores = svm.score_pairs(tst)                     # (S, K)
    assert scores.shape == (10, 20)
    np.testing.assert_allclose(svm.decision_function(tst), scores.T, atol=1e-10)
    # the precomputed-kernel training equals a direct linear SVC on the same data
    X = np.vstack([enr[y == "spk3"], bg])
    lab = np.r_[np.ones(3, int), np.zeros(80, int)]
    ref = SVC(kernel="linear", C=1.0, class_weight="balanced").fit(X, lab)
    k = list(svm.speakers_).index("spk3")
    np.testing.assert_allclose(scores[k], ref.decision_function(tst), rtol=1e-5, atol=1e-5)
    target = scores[tst_spk, np.arange(20)]
    nontarget = scores[tst_spk[None, :] != np.arange(10)[:, None]]
    assert target.min() > nontarget.max()
    svm.save(tmp_path / "svm.npz")
    back = GSVSVM.load(tmp_path / "svm.npz")
    np.testing.assert_array_equal(back.score_pairs(tst), scores)
    assert list(back.speakers_) == list(svm.speakers_)
    mi = back.speaker_index(["spk1", "spk9"])
    np.testing.assert_allclose(back.score_pairs(tst, pairs=(mi, [0, 5])), scores[mi, [0, 5]], atol=1e-12)
    with pytest.raises(SpkrecError, match="no SVM"):
        back.speaker_index(["nobody"])
