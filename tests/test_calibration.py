"""Calibration and fusion: closed forms, sklearn's LogisticRegression, planted fusions, the CLI verbs."""
import json
import logging
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from scipy.special import logit
from sklearn.linear_model import LogisticRegression

from spkrec.backend import LinearCalibration, LinearFusion
from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.eval import metrics as M


def gaussian_classes(rng, mu1, mu0, s, n_tar, n_non):
    x = np.r_[rng.normal(mu1, s, n_tar), rng.normal(mu0, s, n_non)]
    return x, np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)]


# ------------------------------------------------------------------ closed form
@pytest.mark.parametrize("prior", [0.01, 0.5])
def test_equal_variance_gaussians_give_the_true_llr_map(prior):
    # log N(x; mu1, s^2) - log N(x; mu0, s^2) = (mu1 - mu0) / s^2 * x - (mu1^2 - mu0^2) / (2 s^2),
    # the minimiser of the prior-weighted cross-entropy for every prior (the affine model is right).
    mu1, mu0, s = 2.0, -1.0, 1.5
    x, y = gaussian_classes(np.random.default_rng(0), mu1, mu0, s, 20_000, 100_000)
    cal = LinearCalibration(target_prior=prior).fit(x, y)
    # Tolerance: over 30 seeds at these sizes the estimates' standard deviations were 0.013 (scale) and
    # 0.016 (offset) at prior 0.01 (0.010 / 0.011 at 0.5); 5 of them. Forgetting the prior weights
    # would move the offset by log(N_tar / N_non) = -1.6, forgetting the logit(p) shift by 4.6.
    assert cal.scale_ == pytest.approx((mu1 - mu0) / s ** 2, abs=0.065)
    assert cal.offset_ == pytest.approx(-(mu1 ** 2 - mu0 ** 2) / (2 * s ** 2), abs=0.08)
    assert np.allclose(cal.transform(x[:5]), cal.scale_ * x[:5] + cal.offset_)


# ------------------------------------------------------------------ against scikit-learn
def skewed_data(rng, n_tar, n_non, k):
    """Non-Gaussian, correlated scores of k systems: gamma targets, mixed logistic/Laplace non-targets."""
    tar = rng.gamma(3.0, 1.0, (n_tar, 1)) + 0.5 * rng.standard_normal((n_tar, k))
    non = np.where(rng.random((n_non, 1)) < 0.7, rng.logistic(0.0, 0.8, (n_non, 1)),
                   rng.laplace(1.0, 0.5, (n_non, 1))) + 0.5 * rng.standard_normal((n_non, k))
    X = np.r_[tar, non] * np.arange(1, k + 1) * 10.0 - 3.0     # systems in different units
    return X, np.r_[np.ones(n_tar, bool), np.zeros(n_non, bool)]


def prior_weights(y, p):
    return np.where(y, p / y.sum(), (1 - p) / (~y).sum())


@pytest.mark.parametrize("k,prior", [(1, 0.01), (1, 0.3), (3, 0.05)])
def test_matches_sklearn_weighted_logistic_regression(k, prior):
    X, y = skewed_data(np.random.default_rng(k), 400, 3000, k)
    sw = prior_weights(y, prior) * y.size                      # rescaling the weights keeps the optimum
    # unpenalised: sklearn's intercept is our offset + logit(p)
    ref = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y, sample_weight=sw)
    model = (LinearCalibration(prior, l2=0.0).fit(X[:, 0], y) if k == 1
             else LinearFusion(prior, l2=0.0).fit(X, y))
    w = np.atleast_1d(model.scale_ if k == 1 else model.weights_)
    assert np.allclose(w, ref.coef_[0], rtol=1e-5)
    assert model.offset_ == pytest.approx(ref.intercept_[0] - logit(prior), rel=1e-5, abs=1e-6)
    # with the default penalty l2 / 2 ||w * sd||^2: sklearn on standardised scores with C = 1 / (l2 n)
    sd, mean = X.std(axis=0), X.mean(axis=0)
    fusion = LinearFusion(prior, l2=0.01).fit(X, y)
    ref = LogisticRegression(C=1 / (0.01 * y.size), tol=1e-12, max_iter=10_000).fit((X - mean) / sd, y,
                                                                                     sample_weight=sw)
    assert np.allclose(fusion.weights_, ref.coef_[0] / sd, rtol=1e-5)
    assert fusion.offset_ == pytest.approx(ref.intercept_[0] - mean @ (ref.coef_[0] / sd) - logit(prior),
                                           rel=1e-5, abs=1e-6)
    assert not np.allclose(fusion.weights_, np.atleast_1d(w), rtol=1e-3)   # the penalty did something


def test_separable_trials_give_a_finite_map():
    x = np.r_[np.arange(10.0) + 20.0, np.arange(10.0)]
    y = np.r_[np.ones(10, bool), np.zeros(10, bool)]
    cal = LinearCalibration().fit(x, y)
    assert np.isfinite([cal.scale_, cal.offset_]).all() and 0 < cal.scale_ < 100
    llr = cal.transform(x)
    assert llr[:10].min() > 0 > llr[10:].max()


# ------------------------------------------------------------------ fusion
def test_fusion_recovers_a_planted_combination():
    # two correlated systems, Gaussian with a shared covariance C given the class: the true LLR is
    # w . s + b with w = C^-1 (m1 - m0), b = -(m1' C^-1 m1 - m0' C^-1 m0) / 2; here w2 < 0 although the
    # second system alone separates the classes the right way round.
    m1, m0, C = np.array([2.0, 1.0]), np.array([-1.0, -0.5]), np.array([[1.0, 0.6], [0.6, 2.0]])
    P = np.linalg.inv(C)
    w, b = P @ (m1 - m0), -0.5 * (m1 @ P @ m1 - m0 @ P @ m0)
    rng = np.random.default_rng(1)
    X = np.r_[rng.multivariate_normal(m1, C, 20_000), rng.multivariate_normal(m0, C, 100_000)]
    y = np.r_[np.ones(20_000, bool), np.zeros(100_000, bool)]
    fusion = LinearFusion().fit(X, y, systems=["a", "b"])
    # Tolerance: 20 seeds gave standard deviations 0.043, 0.017 (weights) and 0.038 (offset); 5 of them.
    assert np.allclose(fusion.weights_, w, atol=[0.22, 0.09]) and fusion.weights_[1] < 0
    assert fusion.offset_ == pytest.approx(b, abs=0.19)
    assert np.allclose(fusion.transform(X[:4]), X[:4] @ fusion.weights_ + fusion.offset_)


# ------------------------------------------------------------------ held-out evaluation
def test_calibrated_held_out_scores_are_llrs():
    rng = np.random.default_rng(2)

    def draw(n_tar, n_non):                  # a badly scaled and shifted but otherwise fine system
        x, y = gaussian_classes(rng, 2.5, -1.0, 1.0, n_tar, n_non)
        return 7.0 * x + 30.0, y
    train, test = draw(2000, 20_000), draw(5000, 50_000)
    raw = test[0]
    llr = LinearCalibration().fit(*train).transform(raw)
    labels = test[1]
    # before: far from calibrated (the test can fail)
    assert M.cllr(raw, labels) - M.min_cllr(raw, labels) > 1.0
    assert M.act_dcf(raw, labels) > 1.5 * M.min_dcf(raw, labels)[0]
    # after (measured over 10 seeds: Cllr gap 0.003-0.005, actDCF / minDCF 1.00-1.02)
    assert M.cllr(llr, labels) - M.min_cllr(llr, labels) < 0.02
    assert M.act_dcf(llr, labels) <= 1.05 * M.min_dcf(llr, labels)[0]


# ------------------------------------------------------------------ input checks, files
@pytest.mark.parametrize("scores,labels,match", [
    ([0.1, np.nan, 0.3, 0.4], [1, 1, 0, 0], "is nan"),
    ([0.1, np.inf, 0.3, 0.4], [1, 1, 0, 0], "is inf"),
    ([0.1, 0.2, 0.3, 0.4], [0, 0, 0, 0], "0 target and 4 non-target"),
    ([0.1, 0.2, 0.3, 0.4], [1, 0, 0, 0], "at least 2 of each"),
    ([0.1, 0.2, 0.3], [1, 0], "3 scores but 2 labels"),
])
def test_bad_training_data(scores, labels, match):
    with pytest.raises(SpkrecError, match=match):
        LinearCalibration().fit(scores, labels)


def test_save_load_round_trip_without_pickle(tmp_path):
    X, y = skewed_data(np.random.default_rng(5), 50, 200, 2)
    cal = LinearCalibration(target_prior=0.05).fit(X[:, 0], y)
    fusion = LinearFusion().fit(X, y, systems=["gmm", "plda"])
    cal.save(tmp_path / "cal.npz")
    fusion.save(tmp_path / "fusion.npz")
    for name in ("cal.npz", "fusion.npz"):                   # plain .npy members, no pickle needed
        with np.load(tmp_path / name, allow_pickle=False) as z:
            header = json.loads(z["__header__"].tobytes())
            arrays = {k: z[k] for k in z.files}
        assert zipfile.is_zipfile(tmp_path / name)
        if name == "cal.npz":
            assert header["kind"] == "LinearCalibration" and set(arrays) == {"__header__"}
            assert header["meta"] == {"scale": cal.scale_, "offset": cal.offset_, "target_prior": 0.05}
        else:
            assert header["kind"] == "LinearFusion" and np.array_equal(arrays["weights"], fusion.weights_)
            assert header["meta"] == {"offset": fusion.offset_, "target_prior": 0.01,
                                      "systems": ["gmm", "plda"]}
    cal2, fusion2 = LinearCalibration.load(tmp_path / "cal.npz"), LinearFusion.load(tmp_path / "fusion.npz")
    assert np.array_equal(cal2.transform(X[:, 0]), cal.transform(X[:, 0]))
    assert np.array_equal(fusion2.transform(X), fusion.transform(X)) and fusion2.systems_ == ["gmm", "plda"]
    with pytest.raises(SpkrecError, match="expected 'LinearFusion'"):
        LinearFusion.load(tmp_path / "cal.npz")
    with pytest.raises(SpkrecError, match="3 systems, but the model was trained on 2"):
        fusion2.transform(np.zeros((4, 3)))


# ------------------------------------------------------------------ CLI
MODELS = [f"spk{j}" for j in range(8)]
TESTS = [f"{m}-t{k}" for m in MODELS for k in range(6)]
KEYS = [(m, t) for m in MODELS for t in TESTS]


def write_scores(path, rng, shift, scale=1.0, offset=0.0, keys=KEYS):
    path.write_text("".join(f"{m} {t} {scale * (rng.normal() + shift * t.startswith(m + '-')) + offset:.6f}\n"
                            for m, t in keys))
    return str(path)


@pytest.fixture
def cli_files(tmp_path):
    rng = np.random.default_rng(7)
    trials = tmp_path / "trials"
    trials.write_text("".join(f"{m} {t} {'target' if t.startswith(m + '-') else 'nontarget'}\n"
                              for m, t in KEYS))
    f = {"dir": tmp_path, "trials": str(trials)}
    for part in ("train", "eval"):
        f[f"a_{part}"] = write_scores(tmp_path / f"a_{part}.txt", rng, 2.5, scale=10.0, offset=40.0)
        f[f"b_{part}"] = write_scores(tmp_path / f"b_{part}.txt", rng, 1.5, scale=0.1, offset=-3.0)
    return f


def read(path):
    rows = [ln.split() for ln in open(path)]
    return [(e, t) for e, t, _ in rows], np.array([float(s) for *_, s in rows])


def test_train_and_apply_calibration(cli_files, caplog):
    f, d = cli_files, cli_files["dir"]
    caplog.set_level(logging.INFO, logger="spkrec")
    assert main(["train-calibration", f["a_train"], f["trials"], str(d / "cal.npz")]) == 0
    assert "llr = " in caplog.text and "training trials, calibrated" in caplog.text and "minCllr" in caplog.text
    assert main(["apply-calibration", str(d / "cal.npz"), f["a_eval"], str(d / "cal_eval.txt")]) == 0
    keys, llr = read(d / "cal_eval.txt")
    raw_keys, raw = read(f["a_eval"])
    cal = LinearCalibration.load(d / "cal.npz")
    assert keys == raw_keys and np.allclose(llr, cal.scale_ * raw + cal.offset_, atol=1e-6)
    labels = np.array([t.startswith(m + "-") for m, t in keys])
    assert M.cllr(raw, labels) > 10 and M.cllr(llr, labels) < M.min_cllr(llr, labels) + 0.1


def test_fuse_trains_applies_and_reapplies(cli_files, capsys):
    f, d = cli_files, cli_files["dir"]
    out, model = d / "fused.txt", d / "fusion.npz"
    assert main(["fuse", "--trials", f["trials"], "--model-out", str(model), "--out", str(out),
                 f"{f['a_train']},{f['a_eval']}", f"{f['b_train']},{f['b_eval']}"]) == 0
    fusion = LinearFusion.load(model)
    assert fusion.systems_ == ["a_train", "b_train"] and fusion.weights_.shape == (2,)
    keys, fused = read(out)
    _, a = read(f["a_eval"])
    _, b = read(f["b_eval"])
    assert keys == KEYS and np.allclose(fused, fusion.weights_ @ [a, b] + fusion.offset_, atol=1e-6)
    # applying the stored model to the same files gives the same scores
    assert main(["fuse", "--model", str(model), "--out", str(d / "again.txt"), f["a_eval"], f["b_eval"]]) == 0
    assert read(d / "again.txt")[1].tolist() == fused.tolist()
    labels = np.array([t.startswith(m + "-") for m, t in keys])
    assert M.eer(fused, labels)[0] <= M.eer(a, labels)[0] + 1e-9


def err_of(argv, capsys):
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    return err


def test_cli_bad_input_one_line_errors(cli_files, capsys):
    f, d = cli_files, cli_files["dir"]
    one_class = d / "one_class"
    one_class.write_text("".join(ln for ln in open(f["trials"]) if ln.endswith(" nontarget\n")))
    sub = d / "sub.txt"                                   # scores of only the one-class trials
    sub.write_text("".join(f"{m} {t} 0.5\n" for m, t, _ in (ln.split() for ln in open(one_class))))
    err = err_of(["train-calibration", str(sub), str(one_class), str(d / "x.npz")], capsys)
    assert str(sub) in err and "0 target" in err
    # a trial without a score, and a scored pair that is not a trial
    missing = d / "missing.txt"
    missing.write_text("".join(open(f["a_train"]).readlines()[1:]))
    err = err_of(["train-calibration", str(missing), f["trials"], str(d / "x.npz")], capsys)
    assert f"{f['trials']}:1: trial spk0 spk0-t0 has no score in {missing}" in err
    extra = d / "extra.txt"
    extra.write_text(open(f["a_train"]).read() + "spk9 spk9-t0 1.0\n")
    err = err_of(["train-calibration", str(extra), f["trials"], str(d / "x.npz")], capsys)
    assert f"{extra}:{len(KEYS) + 1}: trial spk9 spk9-t0 is not in {f['trials']}" in err
    # NaN and inf scores
    nan = d / "nan.txt"
    lines = open(f["a_train"]).readlines()
    nan.write_text("".join(lines[:3] + ["spk0 spk0-t3 nan\n"] + lines[4:]))
    assert f"{nan}:4:" in err_of(["train-calibration", str(nan), f["trials"], str(d / "x.npz")], capsys)
    inf = d / "inf.txt"
    inf.write_text("".join(lines[:3] + ["spk0 spk0-t3 inf\n"] + lines[4:]))
    err = err_of(["train-calibration", str(inf), f["trials"], str(d / "x.npz")], capsys)
    assert str(inf) in err and "is inf" in err
    assert not (d / "x.npz").exists()
    # fuse: systems that do not score the same trials
    err = err_of(["fuse", "--trials", f["trials"], "--out", str(d / "o.txt"),
                  f"{f['a_train']},{f['a_eval']}", f"{missing},{f['b_eval']}"], capsys)
    assert str(missing) in err and "spk0 spk0-t0" in err
    err = err_of(["fuse", "--trials", f["trials"], "--out", str(d / "o.txt"),
                  f"{f['a_train']},{f['a_eval']}", f"{f['b_train']},{extra}"], capsys)
    assert f"{extra}:{len(KEYS) + 1}: trial spk9 spk9-t0 is not in {f['a_eval']}" in err
    err = err_of(["fuse", "--trials", f["trials"], "--out", str(d / "o.txt"), f"{f['a_train']},{f['a_eval']}",
                  f["b_train"]], capsys)
    assert "TRAIN_SCORES,EVAL_SCORES" in err
    assert main(["fuse", "--trials", f["trials"], "--model-out", str(d / "fu.npz"), f["a_train"],
                 f["b_train"]]) == 0
    err = err_of(["fuse", "--model", str(d / "fu.npz"), "--out", str(d / "o.txt"), f["a_eval"]], capsys)
    assert "fuses 2 systems (a_train, b_train), got 1" in err
    assert not (d / "o.txt").exists()


def test_cli_error_in_a_fresh_process_has_no_traceback(cli_files):
    d = cli_files["dir"]
    one_class = d / "one_class"
    one_class.write_text("spk0 spk1-t0 nontarget\nspk0 spk1-t1 nontarget\nspk0 spk1-t2 nontarget\n")
    scores = d / "s.txt"
    scores.write_text("spk0 spk1-t0 1\nspk0 spk1-t1 2\nspk0 spk1-t2 3\n")
    proc = subprocess.run([sys.executable, "-m", "spkrec.cli.main", "train-calibration", str(scores),
                           str(one_class), str(d / "c.npz")], capture_output=True, text=True)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"spkrec train-calibration: error: {scores} on {one_class}: 0 target")
