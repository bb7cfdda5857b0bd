"""Verification and identification metrics against sklearn, brute-force loops and hand-worked cases."""
import math

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression

from spkrec.errors import SpkrecError
from spkrec.eval import identification as ident
from spkrec.eval import metrics as M
from spkrec.eval.report import results_table


def gaussian_trials(n_tar=400, n_non=4000, d=2.0, seed=0, decimals=None):
    rng = np.random.default_rng(seed)
    s = np.r_[rng.normal(d, 1.0, n_tar), rng.normal(0.0, 1.0, n_non)]
    if decimals is not None:
        s = np.round(s, decimals)          # many ties
    labels = np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)]
    perm = rng.permutation(s.size)
    return s[perm], labels[perm]


def interpolated_eer_from_roc(fpr, tpr):
    """EER by linear interpolation on sklearn's ROC points (independent of spkrec's code)."""
    fnr = 1.0 - tpr
    d = fnr - fpr                           # sklearn order: thresholds descending, d decreasing
    i = np.flatnonzero(d <= 0)[0]
    if d[i] == 0:
        return fnr[i]
    a = d[i - 1] / (d[i - 1] - d[i])
    return fnr[i - 1] + a * (fnr[i] - fnr[i - 1])


def brute_rates(scores, labels, t):
    return np.mean(scores[labels] < t), np.mean(scores[~labels] >= t)


# ------------------------------------------------------------------ DET curve, EER, AUC vs sklearn
@pytest.mark.parametrize("decimals", [None, 1, 0])
def test_det_curve_matches_sklearn_roc_and_det(decimals):
    s, lab = gaussian_trials(decimals=decimals, seed=1)
    p_fa, p_miss, thr = M.det_curve(s, lab)
    assert np.all(np.diff(p_fa) <= 0) and np.all(np.diff(p_miss) >= 0)
    assert (p_fa[0], p_miss[0], p_fa[-1], p_miss[-1]) == (1.0, 0.0, 0.0, 1.0)
    fpr, tpr, sk_thr = skm.roc_curve(lab, s, drop_intermediate=False)
    finite = np.isfinite(sk_thr)
    idx = np.searchsorted(thr, sk_thr[finite])
    np.testing.assert_array_equal(thr[idx], sk_thr[finite])
    np.testing.assert_allclose(p_fa[idx], fpr[finite], atol=1e-12)
    np.testing.assert_allclose(p_miss[idx], 1 - tpr[finite], atol=1e-12)
    fpr2, fnr2, det_thr = skm.det_curve(lab, s)
    idx = np.searchsorted(thr, det_thr)
    np.testing.assert_allclose(p_fa[idx], fpr2, atol=1e-12)
    np.testing.assert_allclose(p_miss[idx], fnr2, atol=1e-12)
    # every point against the definition
    for k in range(0, thr.size, max(1, thr.size // 40)):
        pm, pf = brute_rates(s, lab, thr[k])
        assert p_miss[k] == pytest.approx(pm) and p_fa[k] == pytest.approx(pf)


@pytest.mark.parametrize("decimals", [None, 1, 0])
@pytest.mark.parametrize("drop", [False, True])
def test_exact_eer_equals_interpolated_sklearn_roc(decimals, drop):
    s, lab = gaussian_trials(decimals=decimals, seed=2)
    fpr, tpr, _ = skm.roc_curve(lab, s, drop_intermediate=drop)
    e, thr = M.eer(s, lab)
    assert e == pytest.approx(interpolated_eer_from_roc(fpr, tpr), abs=1e-12)
    if decimals is None:                   # unrounded: EER ~ Phi(-d'/2) and the threshold's rates are near it
        assert abs(e - norm.cdf(-1.0)) < 0.03
        pm, pf = brute_rates(s, lab, thr)
        assert abs(pm - e) < 0.01 and abs(pf - e) < 0.01


@pytest.mark.parametrize("decimals", [None, 1, 0])
def test_auc_matches_sklearn(decimals):
    s, lab = gaussian_trials(decimals=decimals, seed=3)
    assert M.roc_auc(s, lab) == pytest.approx(skm.roc_auc_score(lab, s), abs=1e-12)


def test_results_do_not_depend_on_trial_order():
    s, lab = gaussian_trials(decimals=1, seed=4)
    perm = np.random.default_rng(9).permutation(s.size)
    for f in (M.eer, M.min_dcf, M.cllr, M.min_cllr, M.roc_auc):
        a, b = f(s, lab), f(s[perm], lab[perm])
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert M.eer(s, lab, "rocch") == pytest.approx(M.eer(s[perm], lab[perm], "rocch"), abs=1e-12)


# ------------------------------------------------------------------ ROCCH
def lower_hull(x, y):
    """Andrew's monotone chain lower hull of points sorted by x (textbook)."""
    pts = sorted(set(zip(x.tolist(), y.tolist())))
    hull = []
    for p in pts:
        while len(hull) >= 2 and ((hull[-1][0] - hull[-2][0]) * (p[1] - hull[-2][1])
                                  - (hull[-1][1] - hull[-2][1]) * (p[0] - hull[-2][0])) <= 0:
            hull.pop()
        hull.append(p)
    return np.array(hull)


def bosaris_rocch2eer(p_fa, p_miss):
    """BOSARIS ``rocch2eer``: the largest diagonal crossing of the hull segments' lines."""
    best = 0.0
    for i in range(len(p_fa) - 1):
        xy = np.array([[p_fa[i], p_miss[i]], [p_fa[i + 1], p_miss[i + 1]]])
        if np.min(np.abs(xy[0] - xy[1])) == 0:
            continue
        seg = np.linalg.solve(xy, np.ones(2))
        best = max(best, 1.0 / seg.sum())
    return best


@pytest.mark.parametrize("decimals", [None, 1])
def test_rocch_is_the_lower_convex_hull_and_its_eer_matches_bosaris(decimals):
    s, lab = gaussian_trials(n_tar=150, n_non=1500, decimals=decimals, seed=5)
    p_fa, p_miss, _ = M.det_curve(s, lab)
    h_fa, h_miss, h_thr = M.rocch(s, lab)
    hull = lower_hull(p_fa, p_miss)                  # sorted by p_fa ascending
    grid = np.linspace(0, 1, 1001)
    np.testing.assert_allclose(np.interp(grid, h_fa[::-1], h_miss[::-1]),
                               np.interp(grid, hull[:, 0], hull[:, 1]), atol=1e-12)
    e_hull, _ = M.eer(s, lab, method="rocch")
    assert e_hull == pytest.approx(bosaris_rocch2eer(h_fa, h_miss), abs=1e-12)
    assert e_hull <= M.eer(s, lab)[0] + 1e-15


def test_rocch_equals_exact_for_calibrated_scores():
    # PAV-calibrated scores have a convex ROC, so both EER definitions agree
    s, lab = gaussian_trials(seed=6)
    llr = M.calibrate_pav(s, lab)
    assert M.eer(llr, lab)[0] == pytest.approx(M.eer(llr, lab, "rocch")[0], abs=1e-12)
    assert M.eer(llr, lab, "rocch")[0] == pytest.approx(M.eer(s, lab, "rocch")[0], abs=1e-12)


# ------------------------------------------------------------------ hand-worked cases
def test_four_scores_by_hand():
    # ascending: 0 (non), 1 (tar), 2 (non), 3 (tar)
    s = np.array([3.0, 1.0, 2.0, 0.0])
    lab = np.array([True, True, False, False])
    p_fa, p_miss, thr = M.det_curve(s, lab)
    np.testing.assert_array_equal(thr, [0, 1, 2, 3, np.inf])
    np.testing.assert_array_equal(p_miss, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_array_equal(p_fa, [1, 0.5, 0.5, 0, 0])
    assert M.eer(s, lab) == (0.5, 2.0)                     # the point (0.5, 0.5) lies on the diagonal
    # hull: PAV pools {1, 2}; vertices (p_fa, p_miss) = (1,0), (.5,0), (0,.5), (0,1): crosses at .25
    h_fa, h_miss, h_thr = M.rocch(s, lab)
    np.testing.assert_array_equal(h_fa, [1, 0.5, 0, 0])
    np.testing.assert_array_equal(h_miss, [0, 0, 0.5, 1])
    assert M.eer(s, lab, "rocch")[0] == pytest.approx(0.25)
    # normalised DCF with p_target=0.5: p_miss + p_fa = 1, .5, 1, .5, 1 -> .5 at the first minimum (t=1)
    assert M.min_dcf(s, lab, p_target=0.5) == (0.5, 1.0)
    # p_target=0.01: p_miss + 99 p_fa = 99, 49.5, 50, .5, 1 -> .5 at t=3
    assert M.min_dcf(s, lab, p_target=0.01) == (pytest.approx(0.5), 3.0)
    assert M.bayes_threshold(0.5) == 0.0
    assert M.act_dcf(s, lab, p_target=0.5) == 1.0           # t=0 accepts all: p_fa = 1
    assert M.act_dcf(s, lab, threshold=1.5, p_target=0.5) == 1.0
    assert M.act_dcf(s, lab, threshold=2.5, p_target=0.5) == 0.5
    cllr = 0.5 * (0.5 * (math.log2(1 + math.exp(-3)) + math.log2(1 + math.exp(-1)))
                  + 0.5 * (math.log2(1 + math.exp(2)) + math.log2(1 + math.exp(0))))
    assert M.cllr(s, lab) == pytest.approx(cllr, rel=1e-12)
    # optimal LLRs -inf, 0, 0, +inf: only the pooled pair costs 1 bit each -> (1/2 + 1/2) / 2
    np.testing.assert_array_equal(M.calibrate_pav(s, lab), [np.inf, 0, 0, -np.inf])
    assert M.min_cllr(s, lab) == pytest.approx(0.5)
    assert M.roc_auc(s, lab) == 0.75


def test_perfect_separation():
    s = np.array([5.0, 4.0, 3.5, 1.0, 0.5, -2.0])
    lab = np.array([1, 1, 1, 0, 0, 0])
    assert M.eer(s, lab) == (0.0, 3.5)
    assert M.eer(s, lab, "rocch")[0] == 0.0
    assert M.min_dcf(s, lab)[0] == 0.0
    assert M.min_cllr(s, lab) == 0.0
    assert M.roc_auc(s, lab) == 1.0
    assert M.act_dcf(s, lab, threshold=2.0) == 0.0


def test_identical_scores_and_identical_distributions():
    lab = np.r_[np.ones(10, bool), np.zeros(30, bool)]
    s = np.zeros(40)                                   # one tie: no discrimination at all
    assert M.eer(s, lab) == (0.5, 0.0) and M.eer(s, lab, "rocch")[0] == 0.5
    assert M.min_dcf(s, lab) == (1.0, np.inf)              # reject everything
    assert M.cllr(s, lab) == pytest.approx(1.0, abs=1e-15) and M.min_cllr(s, lab) == pytest.approx(1.0)
    assert M.roc_auc(s, lab) == 0.5
    rng = np.random.default_rng(7)
    s = rng.normal(size=20000)
    lab = rng.random(20000) < 0.3
    assert abs(M.eer(s, lab)[0] - 0.5) < 0.02 and abs(M.roc_auc(s, lab) - 0.5) < 0.02
    assert M.min_dcf(s, lab)[0] > 0.95 and M.min_cllr(s, lab) > 0.98


def test_reversed_scores_give_auc_complement_and_worst_eer():
    s, lab = gaussian_trials(decimals=1, seed=8)
    assert M.roc_auc(-s, lab) == pytest.approx(1 - M.roc_auc(s, lab), abs=1e-12)
    assert M.eer(-s, lab)[0] > 0.8


# ------------------------------------------------------------------ minDCF / actDCF
@pytest.mark.parametrize("p_target,c_miss,c_fa", [(0.01, 1, 1), (0.05, 10, 1), (0.5, 1, 3)])
def test_min_dcf_against_threshold_sweep(p_target, c_miss, c_fa):
    s, lab = gaussian_trials(n_tar=100, n_non=900, decimals=1, seed=10)
    best = np.inf
    for t in np.r_[np.unique(s), np.inf]:
        pm, pf = brute_rates(s, lab, t)
        cost = c_miss * p_target * pm + c_fa * (1 - p_target) * pf
        cost /= min(c_miss * p_target, c_fa * (1 - p_target))
        best = min(best, cost)
    m, thr = M.min_dcf(s, lab, p_target, c_miss, c_fa)
    assert m == pytest.approx(best, abs=1e-12) and 0 <= m <= 1
    pm, pf = brute_rates(s, lab, thr)
    assert M.act_dcf(s, lab, thr, p_target, c_miss, c_fa) == pytest.approx(m, abs=1e-12)
    assert M.act_dcf(s, lab, None, p_target, c_miss, c_fa) >= m


def test_calibrated_gaussian_llrs_large_sample():
    # target LLRs ~ N(mu, 2 mu), non-target LLRs ~ N(-mu, 2 mu) are exactly calibrated
    mu, n = 2.0, 100000
    rng = np.random.default_rng(11)
    s = np.r_[rng.normal(mu, math.sqrt(2 * mu), n), rng.normal(-mu, math.sqrt(2 * mu), n)]
    lab = np.r_[np.ones(n, bool), np.zeros(n, bool)]
    # closed form: Cllr = E_tar[log2(1 + e^-s)] (the non-target term is equal by symmetry)
    dens = norm(mu, math.sqrt(2 * mu))
    expected = integrate.quad(lambda x: dens.pdf(x) * np.logaddexp(0, -x) / math.log(2), -40, 40)[0]
    assert M.cllr(s, lab) == pytest.approx(expected, abs=0.005)
    mc = M.min_cllr(s, lab)
    assert mc <= M.cllr(s, lab) and M.cllr(s, lab) - mc < 0.005
    assert M.eer(s, lab)[0] == pytest.approx(norm.cdf(-math.sqrt(mu / 2)), abs=0.005)
    # calibrated: the Bayes threshold is (near) optimal
    assert M.act_dcf(s, lab, p_target=0.1) - M.min_dcf(s, lab, p_target=0.1)[0] < 0.02
    # badly scaled scores: same discrimination, worse calibration
    assert M.min_cllr(3 * s + 1, lab) == pytest.approx(mc, abs=1e-12)
    assert M.cllr(3 * s + 1, lab) > M.cllr(s, lab) + 0.1


def test_discrimination_metrics_invariant_under_monotone_maps():
    s, lab = gaussian_trials(decimals=1, seed=12)
    for t in (lambda x: 2 * x - 1, np.exp, lambda x: np.arctan(x) + 5):
        assert M.eer(t(s), lab)[0] == pytest.approx(M.eer(s, lab)[0], abs=1e-12)
        assert M.min_dcf(t(s), lab)[0] == pytest.approx(M.min_dcf(s, lab)[0], abs=1e-12)
        assert M.min_cllr(t(s), lab) == pytest.approx(M.min_cllr(s, lab), abs=1e-12)
        assert M.roc_auc(t(s), lab) == pytest.approx(M.roc_auc(s, lab), abs=1e-12)


def test_min_cllr_never_exceeds_cllr():
    for seed in range(5):
        s, lab = gaussian_trials(n_tar=50, n_non=300, d=seed * 0.7, decimals=seed % 2 or None, seed=seed)
        s = s * (seed - 2)                       # includes anti-calibrated and constant systems
        assert M.min_cllr(s, lab) <= M.cllr(s, lab) + 1e-12
        assert M.min_cllr(s, lab) <= 1.0 + 1e-12


# ------------------------------------------------------------------ PAV
def textbook_pav(y, w):
    blocks = []                                   # [value, weight, count]
    for yi, wi in zip(y, w):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] >= blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            blocks.append([(v1 * w1 + v2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([[v] * c for v, _, c in blocks])


def test_pav_against_textbook_loop_and_isotonic_regression():
    rng = np.random.default_rng(13)
    for n in (1, 2, 7, 200):
        y = rng.random(n) + np.linspace(0, 0.5, n)
        w = rng.integers(1, 5, n).astype(float)
        np.testing.assert_allclose(M.pav(y, w), textbook_pav(y, w), atol=1e-12)
        x = np.arange(n)
        iso = IsotonicRegression().fit(x, y, sample_weight=w).predict(x)
        np.testing.assert_allclose(M.pav(y, w), iso, atol=1e-12)
    labels = rng.random(300) < 0.4
    np.testing.assert_allclose(M.pav(labels.astype(float)), textbook_pav(labels.astype(float), np.ones(300)))


# ------------------------------------------------------------------ errors
def test_bad_input_raises_spkrec_error():
    with pytest.raises(SpkrecError, match="no target"):
        M.eer([1.0, 2.0], [0, 0])
    with pytest.raises(SpkrecError, match="no non-target"):
        M.min_dcf([1.0, 2.0], [True, True])
    with pytest.raises(SpkrecError, match="NaN"):
        M.cllr([1.0, np.nan, 0.0], [1, 0, 0])
    with pytest.raises(SpkrecError, match="labels"):
        M.roc_auc([1.0, 2.0, 3.0], [1, 0])
    with pytest.raises(SpkrecError, match="0/1"):
        M.roc_auc([1.0, 2.0], [2, 0])
    with pytest.raises(SpkrecError, match="p_target"):
        M.min_dcf([1.0, 2.0], [1, 0], p_target=1.0)
    with pytest.raises(SpkrecError, match="method"):
        M.eer([1.0, 2.0], [1, 0], method="kaldi")
    with pytest.raises(SpkrecError):
        M.det_curve([], [])


def test_infinite_scores_are_allowed():
    s = np.array([np.inf, 2.0, -np.inf, 0.0])
    lab = np.array([True, True, False, False])
    assert M.eer(s, lab)[0] == 0.0 and M.cllr(s, lab) < 1.0 and M.roc_auc(s, lab) == 1.0


def test_verification_metrics_bundle():
    s, lab = gaussian_trials(seed=14)
    m = M.verification_metrics(s, lab, p_target=0.05)
    assert m["eer"] == M.eer(s, lab)[0] and m["min_dcf"] == M.min_dcf(s, lab, 0.05)[0]
    assert m["act_dcf_threshold"] == pytest.approx(-math.log(0.05 / 0.95))
    assert (m["num_targets"], m["num_nontargets"]) == (400, 4000)
    assert m["min_cllr"] <= m["cllr"] and m["auc"] == M.roc_auc(s, lab)


# ------------------------------------------------------------------ identification
def make_id_problem(n_models=8, per_model=5, seed=0, decimals=None):
    rng = np.random.default_rng(seed)
    models = [f"spk{j:02d}" for j in range(n_models)]
    tests = [f"{m}-utt{k}" for m in models for k in range(per_model)]
    utt2spk = {t: t.split("-")[0] for t in tests}
    truth = np.array([models.index(utt2spk[t]) for t in tests])
    matrix = rng.normal(size=(len(tests), n_models))
    matrix[np.arange(len(tests)), truth] += 1.5
    if decimals is not None:
        matrix = np.round(matrix, decimals)
    return models, tests, utt2spk, matrix, truth


def test_identification_scores_builds_the_matrix_from_shuffled_rows():
    models, tests, utt2spk, matrix, truth = make_id_problem(seed=1)
    rows = [(m, t, matrix[i, j]) for i, t in enumerate(tests) for j, m in enumerate(models)]
    rows = [rows[k] for k in np.random.default_rng(2).permutation(len(rows))]
    got, true_idx = ident.identification_scores(rows, utt2spk)
    np.testing.assert_array_equal(got, matrix)
    np.testing.assert_array_equal(true_idx, truth)
    got, true_idx = ident.identification_scores(rows, utt2spk, models=models[::-1])
    np.testing.assert_array_equal(got, matrix[:, ::-1])
    np.testing.assert_array_equal(true_idx, len(models) - 1 - truth)


def test_identification_scores_errors():
    models, tests, utt2spk, matrix, truth = make_id_problem(n_models=3, per_model=2)
    rows = [(m, t, 0.0) for t in tests for m in models]
    with pytest.raises(SpkrecError, match="no score for model 'spk01' against test utterance 'spk00-utt1'"):
        partial = [r for r in rows if r[:2] != ("spk01", "spk00-utt1")]
        ident.identification_scores(partial, utt2spk, what="s.txt")
    with pytest.raises(SpkrecError, match="twice"):
        ident.identification_scores(rows + rows[:1], utt2spk)
    with pytest.raises(SpkrecError, match="not in the test utt2spk"):
        ident.identification_scores(rows + [("spk00", "other", 1.0)], utt2spk)
    with pytest.raises(SpkrecError, match="has no model"):
        ident.identification_scores(rows, {**utt2spk, "spk00-utt0": "stranger"})
    with pytest.raises(SpkrecError, match="not among"):
        ident.identification_scores(rows, utt2spk, models=models[:2])


@pytest.mark.parametrize("decimals", [None, 0])
def test_top_k_and_confusion_against_loops(decimals):
    models, tests, utt2spk, matrix, truth = make_id_problem(10, 6, seed=3, decimals=decimals)
    for k in (1, 2, 5, 10):
        hits = 0
        for i in range(len(tests)):
            better_or_equal = sum(1 for j in range(len(models))
                                  if j != truth[i] and matrix[i, j] >= matrix[i, truth[i]])
            hits += better_or_equal < k
        assert ident.top_k_accuracy(matrix, truth, k) == pytest.approx(hits / len(tests))
        if decimals is None and k < len(models):      # no ties: sklearn agrees
            assert ident.top_k_accuracy(matrix, truth, k) == pytest.approx(
                skm.top_k_accuracy_score(truth, matrix, k=k, labels=np.arange(len(models))))
    conf = np.zeros((len(models), len(models)), dtype=int)
    for i in range(len(tests)):
        conf[truth[i], int(np.argmax(matrix[i]))] += 1
    np.testing.assert_array_equal(ident.confusion_matrix(matrix, truth), conf)
    sk_conf = skm.confusion_matrix(truth, matrix.argmax(1), labels=np.arange(len(models)))
    np.testing.assert_array_equal(conf, sk_conf)
    assert ident.top_k_accuracy(matrix, truth, len(models)) == 1.0


def test_tie_for_first_place_is_not_a_hit():
    matrix = np.array([[1.0, 1.0, 0.0], [0.0, 2.0, 1.0]])
    assert ident.top_k_accuracy(matrix, [0, 1], 1) == 0.5
    assert ident.top_k_accuracy(matrix, [0, 1], 2) == 1.0
    with pytest.raises(SpkrecError):
        ident.top_k_accuracy(matrix, [0, 1], 0)
    with pytest.raises(SpkrecError):
        ident.confusion_matrix(matrix, [0, 3])


# ------------------------------------------------------------------ results table
def test_results_table_markdown():
    rows = [{"system": "GMM-UBM", "eer": 0.0512345, "min_dcf": 0.43219, "act_dcf": 0.51234, "cllr": 0.71234,
             "min_cllr": 0.30456},
            {"system": "i-vector|PLDA", "eer": 0.1, "min_dcf": None, "cllr": 1.5}]
    table = results_table(rows)
    assert table.splitlines() == [
        "| system | EER % | minDCF | actDCF | Cllr | minCllr |",
        "|---|---:|---:|---:|---:|---:|",
        "| GMM-UBM | 5.12 | 0.4322 | 0.5123 | 0.712 | 0.305 |",
        "| i-vector/PLDA | 10.00 | – | – | 1.500 | – |"]
    rows[0].update(top1=0.9876, topk=1.0)
    lines = results_table(rows).splitlines()
    assert lines[0] == "| system | EER % | minDCF | actDCF | Cllr | minCllr | top-1 % | top-5 % |"
    assert lines[2].endswith("| 98.76 | 100.00 |") and lines[3].endswith("| – | – |")
    table = results_table(rows, k=3, identification=False)
    assert table.splitlines()[0] == "| system | EER % | minDCF | actDCF | Cllr | minCllr |"
