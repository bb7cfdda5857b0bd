"""`spkrec train-ubm / enroll-gmm / score-gmm / extract-supervectors` on real speech (so762-mini)."""
import os

import numpy as np
import pytest

from spkrec.cli.main import main
from spkrec.io.kaldi_io import read_vectors, write_matrices
from test_gmm import mini_features


def _data_dir(path, items, utt2spk):
    os.makedirs(path, exist_ok=True)
    write_matrices(os.path.join(path, "feats.ark"), os.path.join(path, "feats.scp"), sorted(items.items()))
    with open(os.path.join(path, "utt2spk"), "w") as f:
        for utt in sorted(utt2spk):
            f.write(f"{utt} {utt2spk[utt]}\n")
    return str(path)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    feats = mini_features()
    spks = sorted(feats)
    bg, ev = spks[:10], spks[20:30]
    root = tmp_path_factory.mktemp("gmmcli")
    train = {f"{s}-{i}": x for s in bg for i, x in enumerate(feats[s])}
    enroll = {f"{s}-{i}": feats[s][i] for s in ev for i in range(4)}
    test = {f"{s}-{i}": feats[s][i] for s in ev for i in (4, 5)}
    d = {"root": root,
         "train": _data_dir(root / "train", train, {u: u.split("-")[0] for u in train}),
         "enroll": _data_dir(root / "enroll", enroll, {u: u.split("-")[0] for u in enroll}),
         "test": _data_dir(root / "test", test, {u: u.split("-")[0] for u in test})}
    with open(root / "trials", "w") as f:
        for t in sorted(test):
            for s in ev:
                f.write(f"{s} {t} {'target' if t.startswith(s) else 'nontarget'}\n")
    return d


def test_train_enroll_score_supervectors(dirs):
    root = dirs["root"]
    feat_opts = ["--deltas-order", "0", "--cmvn", "none"]          # the test features are final already
    assert main(["train-ubm", "--num-gauss", "16", "--num-iters", "3", "--num-iters-per-split", "2",
                 *feat_opts, dirs["train"], str(root / "ubm")]) == 0
    assert (root / "ubm" / "final.ubm.npz").exists()
    log_lines = (root / "ubm" / "log" / "train_ubm.log").read_text().splitlines()
    assert sum(line.startswith("final 16 ") for line in log_lines) == 3
    # feature options are taken from the UBM from now on
    assert main(["enroll-gmm", "--relevance-factor", "16", str(root / "ubm"), dirs["enroll"],
                 str(root / "models")]) == 0
    assert (root / "models" / "speakers.npz").exists()
    assert main(["score-gmm", str(root / "ubm"), str(root / "models"), dirs["test"], str(root / "trials"),
                 str(root / "scores.txt")]) == 0
    rows = [line.split() for line in (root / "scores.txt").read_text().splitlines()]
    assert len(rows) == 200
    trials = [line.split() for line in (root / "trials").read_text().splitlines()]
    assert [r[:2] for r in rows] == [t[:2] for t in trials]
    score = np.array([float(r[2]) for r in rows])
    target = np.array([t[2] == "target" for t in trials])
    assert score[target].mean() > score[~target].mean() + 0.2
    by_test = score.reshape(20, 10)
    labels = target.reshape(20, 10)
    assert np.mean(labels[np.arange(20), by_test.argmax(1)]) >= 0.6          # closed-set top-1, chance 0.1
    assert main(["score-gmm", "--exact", str(root / "ubm"), str(root / "models"), dirs["test"],
                 str(root / "trials"), str(root / "scores_exact.txt")]) == 0
    exact_lines = (root / "scores_exact.txt").read_text().splitlines()
    exact = np.array([float(line.split()[2]) for line in exact_lines])
    assert np.corrcoef(exact, score)[0, 1] > 0.99
    assert main(["extract-supervectors", str(root / "ubm" / "final.ubm.npz"), dirs["test"],
                 str(root / "sv")]) == 0
    keys, sv = read_vectors(str(root / "sv" / "supervector.scp"))
    assert len(keys) == 20 and sv.shape == (20, 16 * 40)


def test_score_gmm_errors_name_the_trial_line(dirs, capsys):
    root = dirs["root"]
    if not (root / "models" / "speakers.npz").exists():
        pytest.skip("needs the models of the previous test")
    bad = root / "bad_trials"
    first = (root / "trials").read_text().splitlines()[0].split()
    bad.write_text(f"{first[0]} {first[1]}\nnobody {first[1]}\n")
    assert main(["score-gmm", str(root / "ubm"), str(root / "models"), dirs["test"], str(bad),
                 str(root / "bad_scores.txt")]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and "nobody" in err and "Traceback" not in err
    assert not (root / "bad_scores.txt").exists()
    assert main(["train-ubm", str(root / "nowhere"), str(root / "ubm2")]) == 1
    assert "feats.scp" in capsys.readouterr().err
