"""CLI verbs of the back ends on tiny vector tables written with kaldiio."""
import numpy as np
import pytest

from spkrec.backend import GSVSVM, BackendPipeline, adaptive_snorm, cosine_scores, snorm
from spkrec.cli.main import main
from spkrec.io.kaldi_io import write_vectors
from spkrec.io.scores import read_scores


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """30 training speakers x 6 utts, 5 enrolled speakers (3 utts each) and their 2 test utts, dim 8."""
    d = tmp_path_factory.mktemp("backend_cli")
    rng = np.random.default_rng(0)
    dim = 8

    def spk_vectors(n_spk, n_utt, prefix):
        centres = rng.standard_normal((n_spk, dim)) * 2
        out = {}
        for s in range(n_spk):
            for u in range(n_utt):
                out[f"{prefix}{s:02d}-u{u}"] = centres[s] + 0.5 * rng.standard_normal(dim)
        return out, centres

    train, _ = spk_vectors(30, 6, "tr")
    write_vectors(d / "train.ark", d / "train.scp", train.items())
    (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(train)))
    centres = rng.standard_normal((5, dim)) * 2
    enr = {f"ev{s}-e{u}": centres[s] + 0.5 * rng.standard_normal(dim) for s in range(5) for u in range(3)}
    tst = {f"ev{s}-t{u}": centres[s] + 0.5 * rng.standard_normal(dim) for s in range(5) for u in range(2)}
    write_vectors(d / "enroll.ark", d / "enroll.scp", enr.items())
    write_vectors(d / "test.ark", d / "test.scp", tst.items())
    (d / "spk2utt").write_text("".join(f"ev{s} " + " ".join(f"ev{s}-e{u}" for u in range(3)) + "\n"
                                       for s in range(5)))
    spk_mean = {f"ev{s}": np.mean([enr[f"ev{s}-e{u}"] for u in range(3)], axis=0) for s in range(5)}
    write_vectors(d / "spk.ark", d / "spk.scp", spk_mean.items())
    trials = [(f"ev{s}", t,
               "target" if t.startswith(f"ev{s}-") else "nontarget") for s in range(5) for t in tst]
    (d / "trials").write_text("".join(f"{e} {t} {lab}\n" for e, t, lab in trials))
    return dict(dir=d, enr=enr, tst=tst, spk_mean=spk_mean, trials=trials, train=train)


def _mean_gap(path, trials):
    scores = {(e, t): s for e, t, s in read_scores(path)}
    tar = [scores[e, t] for e, t, lab in trials if lab == "target"]
    non = [scores[e, t] for e, t, lab in trials if lab == "nontarget"]
    assert len(tar) + len(non) == len(scores)
    return np.mean(tar) - np.mean(non), min(tar) > max(non)


@pytest.mark.parametrize("variant", ["two-cov", "simplified"])
def test_train_backend_and_score_plda(corpus, variant):
    d = corpus["dir"]
    model = d / f"backend-{variant}.npz"
    assert main(["train-backend", "-q", "--steps", "center,lda:6,wccn,lnorm,plda", "--plda", variant,
                 str(d / "train.scp"), str(d / "utt2spk"), str(model)]) == 0
    pipe = BackendPipeline.load(model)
    assert pipe.is_plda and pipe.steps[1].n_components_ == 6
    out = d / f"plda-{variant}.txt"
    assert main(["score-plda", "-q", str(model), str(d / "spk.scp"), str(d / "test.scp"), str(d / "trials"),
                 str(out)]) == 0
    gap, separated = _mean_gap(out, corpus["trials"])
    assert gap > 3 and separated
    # multi-enrolment equals the library's grouped scoring
    out2 = d / f"plda-multi-{variant}.txt"
    assert main(["score-plda", "-q", str(model), str(d / "enroll.scp"), str(d / "test.scp"),
                 str(d / "trials"),
                 str(out2), "--enroll-spk2utt", str(d / "spk2utt")]) == 0
    enr_keys = sorted(corpus["enr"])
    E = np.array([corpus["enr"][k] for k in enr_keys], dtype=np.float32)
    groups = np.array([int(k[2]) for k in enr_keys])
    tkeys = list(corpus["tst"])
    S = pipe.score_pairs(E, np.array([corpus["tst"][k] for k in tkeys], dtype=np.float32), enroll_groups=groups)
    for e, t, s in read_scores(out2):
        assert s == pytest.approx(S[int(e[2]), tkeys.index(t)], abs=2e-6)


def test_score_cosine_and_norm(corpus):
    d = corpus["dir"]
    raw = d / "cos.txt"
    assert main(["score-cosine", "-q", str(d / "spk.scp"), str(d / "test.scp"), str(d / "trials"),
                 str(raw)]) == 0
    rows = read_scores(raw)
    e, t, s = rows[3]
    ref = cosine_scores(corpus["spk_mean"][e][None].astype(np.float32),
                        corpus["tst"][t][None].astype(np.float32))
    assert s == pytest.approx(ref[0, 0], abs=2e-6)
    assert main(["train-backend", "-q", "--steps", "center,lda:6", str(d / "train.scp"), str(d / "utt2spk"),
                 str(d / "lda.npz")]) == 0
    assert main(["score-cosine", "-q", "--backend", str(d / "lda.npz"), str(d / "spk.scp"),
                 str(d / "test.scp"),
                 str(d / "trials"), str(d / "cos-lda.txt")]) == 0
    assert _mean_gap(d / "cos-lda.txt", corpus["trials"])[1]
    # cohort: 10 training speakers' mean vectors scored against models and test vectors
    cohort = [f"tr{s:02d}" for s in range(10)]
    coh_vec = {c: np.mean([v for k, v in corpus["train"].items() if k.startswith(c)], axis=0) for c in cohort}
    models, tests = list(corpus["spk_mean"]), list(corpus["tst"])
    ecoh = cosine_scores(np.array([corpus["spk_mean"][m] for m in models]), np.array(list(coh_vec.values())))
    tcoh = cosine_scores(np.array([corpus["tst"][t] for t in tests]), np.array(list(coh_vec.values())))
    (d / "ecoh.txt").write_text("".join(f"{m} {c} {ecoh[i, j]:.6f}\n" for i, m in enumerate(models)
                                        for j, c in enumerate(cohort)))
    (d / "tcoh.txt").write_text("".join(f"{c} {t} {tcoh[i, j]:.6f}\n" for i, t in enumerate(tests)
                                        for j, c in enumerate(cohort)))
    raw_rows = read_scores(raw)
    ei = np.array([models.index(e) for e, _, _ in raw_rows])
    ti = np.array([tests.index(t) for _, t, _ in raw_rows])
    s = np.array([x for _, _, x in raw_rows])
    ecoh6, tcoh6 = np.round(ecoh, 6), np.round(tcoh, 6)
    for method, expected in [("s", snorm(s, ecoh6, tcoh6, ei, ti)),
                             ("as", adaptive_snorm(s, ecoh6, tcoh6, ei, ti, top_n=4))]:
        out = d / f"norm-{method}.txt"
        assert main(["score-norm", "-q", "--method", method, "--top-n", "4", str(raw), str(d / "ecoh.txt"),
                     str(d / "tcoh.txt"), str(out)]) == 0
        got = read_scores(out)
        assert [(e, t) for e, t, _ in got] == [(e, t) for e, t, _ in raw_rows]
        np.testing.assert_allclose([x for _, _, x in got], expected, atol=2e-6)
    for method in ("z", "t"):
        assert main(["score-norm", "-q", "--method", method, str(raw), str(d / "ecoh.txt"),
                     str(d / "tcoh.txt"),
                     str(d / f"norm-{method}.txt")]) == 0


def test_svm_verbs(corpus):
    d = corpus["dir"]
    (d / "enroll_utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(corpus["enr"])))
    model = d / "svm.npz"
    assert main(["train-svm", "-q", str(d / "enroll.scp"), str(d / "enroll_utt2spk"), str(d / "train.scp"),
                 str(model)]) == 0
    assert list(GSVSVM.load(model).speakers_) == [f"ev{s}" for s in range(5)]
    out = d / "svm.txt"
    assert main(["score-svm", "-q", str(model), str(d / "test.scp"), str(d / "trials"), str(out)]) == 0
    gap, _ = _mean_gap(out, corpus["trials"])
    assert gap > 0.5       # separation quality is tested in high dimension in test_backend_scoring.py
    keys = sorted(corpus["enr"])
    ref = GSVSVM().fit(np.array([corpus["enr"][k] for k in keys], dtype=np.float32), [k[:3] for k in keys],
                       np.array(list(corpus["train"].values()), dtype=np.float32))
    tkeys = list(corpus["tst"])
    S = ref.score_pairs(np.array([corpus["tst"][k] for k in tkeys], dtype=np.float32))
    for e, t, x in read_scores(out):
        assert x == pytest.approx(S[int(e[2]), tkeys.index(t)], abs=1e-4)


def test_cli_errors(corpus, tmp_path, capsys):
    d = corpus["dir"]
    assert main(["score-cosine", "-q", str(d / "spk.scp"), str(d / "test.scp"), str(d / "trials"),
                 str(d / "cos.txt")]) == 0
    (tmp_path / "trials").write_text("ev0 ev0-t0 target\nnobody ev0-t1 nontarget\n")
    assert main(["score-cosine", str(d / "spk.scp"), str(d / "test.scp"), str(tmp_path / "trials"),
                 str(tmp_path / "o.txt")]) == 1
    err = capsys.readouterr().err
    assert "trials:2: enrolment id 'nobody'" in err and "Traceback" not in err
    assert not (tmp_path / "o.txt").exists()
    assert main(["train-backend", "--steps", "center,bogus", str(d / "train.scp"), str(d / "utt2spk"),
                 str(tmp_path / "b.npz")]) == 1
    assert "unknown step 'bogus'" in capsys.readouterr().err
    assert main(["train-backend", "-q", "--steps", "center,lnorm", str(d / "train.scp"), str(d / "utt2spk"),
                 str(tmp_path / "c.npz")]) == 0
    assert main(["score-plda", str(tmp_path / "c.npz"), str(d / "spk.scp"), str(d / "test.scp"),
                 str(d / "trials"),
                 str(tmp_path / "o.txt")]) == 1
    assert "has no PLDA step" in capsys.readouterr().err
    assert main(["score-plda", str(tmp_path / "missing.npz"), str(d / "spk.scp"), str(d / "test.scp"),
                 str(d / "trials"), str(tmp_path / "o.txt")]) == 1
    assert "model file not found" in capsys.readouterr().err
    (tmp_path / "ecoh.txt").write_text("ev0 c1 0.5\n")
    assert main(["score-norm", "--method", "z", str(d / "cos.txt"), str(tmp_path / "ecoh.txt"),
                 str(tmp_path / "ecoh.txt"), str(tmp_path / "n.txt")]) == 1
    assert "no cohort scores for model 'ev1'" in capsys.readouterr().err


def test_num_utts_equals_multi_enrolment_for_affine_backends(corpus):
    """With only affine steps, a speaker-mean vector with its count scores as all utterances together."""
    d = corpus["dir"]
    assert main(["train-backend", "-q", "--steps", "center,lda:6,plda", str(d / "train.scp"),
                 str(d / "utt2spk"),
                 str(d / "affine.npz")]) == 0
    (d / "num_utts").write_text("".join(f"ev{s} 3\n" for s in range(5)))
    common = [str(d / "test.scp"), str(d / "trials")]
    assert main(["score-plda", "-q", str(d / "affine.npz"), str(d / "spk.scp"), *common, str(d / "a.txt"),
                 "--enroll-num-utts", str(d / "num_utts")]) == 0
    assert main(["score-plda", "-q", str(d / "affine.npz"), str(d / "enroll.scp"), *common, str(d / "b.txt"),
                 "--enroll-spk2utt", str(d / "spk2utt")]) == 0
    assert main(["score-plda", "-q", str(d / "affine.npz"), str(d / "spk.scp"), *common,
                 str(d / "c.txt")]) == 0
    a, b, c = (np.array([x for _, _, x in read_scores(d / f)]) for f in ("a.txt", "b.txt", "c.txt"))
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert np.abs(a - c).max() > 0.1      # the count matters
