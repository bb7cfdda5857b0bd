"""GMM countermeasure: the score against a brute-force log-likelihood ratio, separation of two
synthetic classes, and the train-cm / score-cm / eval-cm verbs on real speech features."""
from pathlib import Path

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from spkrec.spoof.cm import GMMCountermeasure

CORPUS = Path(__file__).resolve().parents[1] / "data" / "so762-mini"


class DictLoader:
    def __init__(self, utts):
        self.utts = utts
        self.utt_ids = list(utts)

    def __call__(self, utt):
        return self.utts[utt]


def _loglik(gmm, x):
    comps = [np.log(w) + multivariate_normal(m, np.diag(v)).logpdf(x)
             for w, m, v in zip(gmm.weights_, gmm.means_, gmm.variances_)]
    return logsumexp(np.stack(comps, axis=-1), axis=-1)


def test_cm_score_is_average_llr_and_separates():
    rng = np.random.default_rng(0)
    utts = {f"b{i}": rng.normal(0.0, 1.0, (200, 4)) for i in range(12)}
    utts.update({f"s{i}": rng.normal(0.8, 1.3, (200, 4)) for i in range(12)})
    loader = DictLoader({k: v.astype(np.float32) for k, v in utts.items()})
    cm = GMMCountermeasure(n_components=4, n_iter=5).fit(loader, [f"b{i}" for i in range(8)],
                                                          [f"s{i}" for i in range(8)])
    held = [f"b{i}" for i in range(8, 12)] + [f"s{i}" for i in range(8, 12)]
    scores = cm.score_utterances(loader, held)
    for utt in held:
        x = loader(utt).astype(np.float64)
        ref = np.mean(_loglik(cm.bonafide_, x) - _loglik(cm.spoof_, x))
        assert scores[utt] == pytest.approx(ref, rel=1e-4, abs=1e-4)
    assert min(scores[u] for u in held[:4]) > max(scores[u] for u in held[4:])


def test_per_attack_cm_scores_against_closest_attack(tmp_path):
    rng = np.random.default_rng(2)
    utts = {f"b{i}": rng.normal(0.0, 1.0, (150, 3)) for i in range(10)}
    utts.update({f"x{i}": rng.normal(1.5, 1.0, (150, 3)) for i in range(10)})
    utts.update({f"y{i}": rng.normal(-1.5, 0.7, (150, 3)) for i in range(10)})
    loader = DictLoader({k: v.astype(np.float32) for k, v in utts.items()})
    spoof = [f"x{i}" for i in range(6)] + [f"y{i}" for i in range(6)]
    cm = GMMCountermeasure(n_components=2, n_iter=4, spoof_models="per_attack").fit(
        loader, [f"b{i}" for i in range(6)], spoof, spoof_attacks=["ax"] * 6 + ["ay"] * 6)
    assert sorted(cm.spoof_) == ["ax", "ay"]
    held = [f"{c}{i}" for c in "bxy" for i in range(6, 10)]
    scores = cm.score_utterances(loader, held)
    for utt in held:
        x = loader(utt).astype(np.float64)
        ref = np.mean(_loglik(cm.bonafide_, x)) - max(np.mean(_loglik(g, x)) for g in cm.spoof_.values())
        assert scores[utt] == pytest.approx(ref, rel=1e-4, abs=1e-4)
    assert min(scores[u] for u in held[:4]) > max(scores[u] for u in held[4:])
    cm.save(tmp_path / "cm")
    back = GMMCountermeasure.load(tmp_path / "cm")
    assert back.spoof_models == "per_attack" and "spoof_attack_models" not in back.meta_
    assert back.score_utterances(loader, held) == scores
    with pytest.raises(Exception, match="attack of every"):
        GMMCountermeasure(n_components=2, spoof_models="per_attack").fit(loader, ["b0"], ["x0"])


def test_cm_save_load(tmp_path):
    rng = np.random.default_rng(1)
    loader = DictLoader({"b": rng.normal(0, 1, (300, 3)).astype(np.float32),
                         "s": rng.normal(1, 1, (300, 3)).astype(np.float32)})
    cm = GMMCountermeasure(n_components=2, n_iter=2).fit(loader, ["b"], ["s"], meta={"feat_type": "lfcc"})
    cm.save(tmp_path / "cm")
    back = GMMCountermeasure.load(tmp_path / "cm")
    assert back.meta_["feat_type"] == "lfcc" and back.meta_["num_bonafide"] == 1
    assert back.score_utterances(loader, ["b", "s"]) == cm.score_utterances(loader, ["b", "s"])


def _data(tmp_path, name, feat_type):
    from spkrec.cli.main import main
    from spkrec.io.datadir import write_data_dir
    spk = "0001"
    flacs = sorted((CORPUS / "WAVE" / f"SPEAKER{spk}").glob("*.flac"))[:4]
    wav = {f"{spk}-{f.stem}": str(f) for f in flacs}
    d = tmp_path / name
    write_data_dir(d, wav, {u: spk for u in wav})
    labels = ["bonafide", "bonafide", "fake", "fake"]
    (d / "utt2attack").write_text("".join(f"{u} {a}\n" for u, a in zip(sorted(wav), labels)))
    assert main(["compute-feats", "--feat-type", feat_type, str(d), str(tmp_path / f"feats_{name}")]) == 0
    return d


def test_cm_verbs_and_bad_input(tmp_path, capsys):
    from spkrec.cli.main import main
    lfcc, mfcc = _data(tmp_path, "lf", "lfcc"), _data(tmp_path, "mf", "mfcc")
    cm = tmp_path / "cm"
    assert main(["train-cm", "--num-gauss", "2", "--num-iters", "1", "--cmvn", "none", str(lfcc), str(cm)]) == 0
    assert main(["train-cm", "--num-gauss", "2", "--num-iters", "1", "--cmvn", "none", "--spoof-models",
                 "per-attack", str(lfcc), str(tmp_path / "cm_pa")]) == 0
    assert (tmp_path / "cm_pa" / "spoof.fake.gmm.npz").exists()
    assert main(["score-cm", str(tmp_path / "cm_pa"), str(lfcc), str(tmp_path / "s_pa.txt")]) == 0
    assert main(["score-cm", str(cm), str(lfcc), str(tmp_path / "s.txt")]) == 0
    rows = [line.split() for line in (tmp_path / "s.txt").read_text().splitlines()]
    assert len(rows) == 4 and all(np.isfinite(float(s)) for _, s in rows)
    assert main(["eval-cm", "--det-plot", str(tmp_path / "det.png"), str(tmp_path / "s.txt"), str(lfcc)]) == 0
    assert "| fake |" in capsys.readouterr().out
    assert (tmp_path / "det.png").read_bytes()[:4] == b"\x89PNG"
    for argv, msg in [(["score-cm", str(cm), str(mfcc), str(tmp_path / "x.txt")], "trained on lfcc"),
                      (["train-cm", "--attacks", "replay", str(lfcc), str(tmp_path / "cm2")],
                       "no utterances of attack(s) replay")]:
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
    assert not (tmp_path / "x.txt").exists()


def test_logsumexp_combination_against_direct_formula():
    rng = np.random.default_rng(3)
    utts = {f"b{i}": rng.normal(0.0, 1.0, (120, 3)) for i in range(8)}
    utts.update({f"x{i}": rng.normal(1.2, 1.0, (120, 3)) for i in range(8)})
    utts.update({f"y{i}": rng.normal(-1.2, 0.8, (120, 3)) for i in range(8)})
    loader = DictLoader({k: v.astype(np.float32) for k, v in utts.items()})
    cm = GMMCountermeasure(n_components=2, n_iter=3, spoof_models="per_attack", combine="logsumexp").fit(
        loader, [f"b{i}" for i in range(5)], [f"{c}{i}" for c in "xy" for i in range(5)],
        spoof_attacks=["ax"] * 5 + ["ay"] * 5)
    held = [f"{c}{i}" for c in "bxy" for i in range(5, 8)]
    scores = cm.score_utterances(loader, held)
    for utt in held:
        x = loader(utt).astype(np.float64)
        att = [np.mean(_loglik(g, x)) for g in cm.spoof_.values()]
        ref = np.mean(_loglik(cm.bonafide_, x)) - np.log(0.5 * np.exp(att[0]) + 0.5 * np.exp(att[1]))
        assert scores[utt] == pytest.approx(ref, rel=1e-4, abs=1e-4)


def test_cm_is_a_sklearn_estimator():
    from sklearn.base import clone
    cm = GMMCountermeasure(n_components=8, spoof_models="per_attack", combine="logsumexp")
    assert clone(cm).get_params() == cm.get_params()
    assert cm.get_params()["combine"] == "logsumexp" and cm.get_params()["n_components"] == 8


@pytest.mark.parametrize("seed", range(5))
def test_cm_threshold_policies_against_brute_force(seed):
    from spkrec.spoof.cm import cm_threshold
    rng = np.random.default_rng(seed)
    bona, spoof = np.round(rng.normal(1, 1, 9), 1), np.round(rng.normal(-1, 1, 7), 1)
    grid = sorted(set(bona) | set(spoof) | {spoof.max() + 1.0})
    for p in (0.05, 0.3, 0.7):
        risk = [p * np.mean(spoof >= t) + (1 - p) * np.mean(bona < t) for t in grid]
        t = cm_threshold(bona, spoof, f"bayes:{p}")
        assert p * np.mean(spoof >= t) + (1 - p) * np.mean(bona < t) == pytest.approx(min(risk))
    for r in (0.0, 0.1, 0.25, 0.5):
        ok = [t for t in sorted(set(bona)) if np.sum(bona < t) <= r * bona.size]
        assert cm_threshold(bona, spoof, f"bonafide-miss:{r}") == pytest.approx(max(ok))
    with pytest.raises(Exception, match="policy"):
        cm_threshold(bona, spoof, "bayes:2")


def test_cm_threshold_verb_prints_the_policy_threshold_and_names_an_unlabelled_utterance(tmp_path, capsys):
    from spkrec.cli.main import main
    from spkrec.spoof.cm import cm_threshold
    rng = np.random.default_rng(3)
    bona, spoof = rng.normal(2.0, 1.0, 40), rng.normal(-1.0, 1.0, 60)
    utts = [f"b{i:02d}" for i in range(40)] + [f"s{i:02d}" for i in range(60)]
    (tmp_path / "scores").write_text("".join(f"{u} {s:.6f}\n" for u, s in zip(utts, np.r_[bona, spoof])))
    data = tmp_path / "data"
    data.mkdir()
    (data / "utt2attack").write_text("".join(f"{u} {'bonafide' if u[0] == 'b' else 'replay'}\n" for u in utts))
    for policy in ("bonafide-miss:0.05", "bayes:0.3"):
        assert main(["cm-threshold", "--policy", policy, str(tmp_path / "scores"), str(data)]) == 0
        want = cm_threshold(np.round(bona, 6), np.round(spoof, 6), policy)
        assert abs(float(capsys.readouterr().out.strip()) - want) < 1e-9
    (data / "utt2attack").write_text("".join(f"{u} replay\n" for u in utts[1:]))
    assert main(["cm-threshold", str(tmp_path / "scores"), str(data)]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'b00'" in err[0] and "utt2attack" in err[0]
