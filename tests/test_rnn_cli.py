"""`spkrec train-rnn / extract-embeddings / classify-rnn` on real speech, and the hint when PyTorch is missing."""
import os
import subprocess
import sys

import numpy as np
import pytest

from spkrec.cli.main import main

MINI = os.path.join(os.path.dirname(__file__), "..", "data", "so762-mini")
# torch made unimportable as when it is not installed (sys.modules['torch'] = None would also break
# scikit-learn's import, which looks torch up in sys.modules)
NO_TORCH = ("import sys, importlib.abc\n"
            "class _NoTorch(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
            "sys.meta_path.insert(0, _NoTorch())\n")


def _run_without_torch(code):
    return subprocess.run([sys.executable, "-c", NO_TORCH + code], capture_output=True, text=True, timeout=120)


def test_missing_torch_gives_install_hint(tmp_path):
    r = _run_without_torch("import spkrec.embeddings as e; assert 'RNNEmbedder' in e.__all__; "
                           "from spkrec.cli.main import main; assert main(['--help']) == 0; "
                           "assert main(['classify-rnn', '--help']) == 0")
    assert r.returncode == 0, r.stderr
    for verb in (["train-rnn", str(tmp_path), str(tmp_path / "out")],
                 ["extract-embeddings", str(tmp_path), str(tmp_path), str(tmp_path / "out")],
                 ["classify-rnn", str(tmp_path), str(tmp_path), str(tmp_path / "scores")]):
        r = _run_without_torch(f"from spkrec.cli.main import main; sys.exit(main({verb!r}))")
        assert r.returncode == 1, r.stderr
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert "pip install 'spkrec[rnn]'" in lines[0] and "torch==2.13.0" in lines[0]
    r = _run_without_torch("from spkrec.embeddings import RNNEmbedder; RNNEmbedder().fit([], [])")
    assert "SpkrecError" in r.stderr and "torch==2.13.0" in r.stderr


torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """12 so762-mini speakers with MFCC + VAD computed by `spkrec compute-feats` / `compute-vad`."""
    from spkrec.io.datadir import subset_data_dir
    from spkrec.io.prepare import prepare_so762
    root = tmp_path_factory.mktemp("rnn_cli")
    full = prepare_so762(MINI, root / "full")
    spks = sorted(set(full.utt2spk.values()))[30:42]
    data = subset_data_dir(full, root / "data", spks=spks)
    assert main(["compute-feats", "-q", data.path, str(root / "mfcc"), "--num-ceps=20", "--dither=0"]) == 0
    assert main(["compute-vad", "-q", data.path]) == 0
    enroll = subset_data_dir(data, root / "enroll", first_per_spk=4)
    test = subset_data_dir(data, root / "test", last_per_spk=2)
    return {"root": root, "data": data.path, "enroll": enroll.path, "test": test.path, "spks": spks}


SMALL = ["--cell", "gru", "--layers", "1", "--hidden", "32", "--embed-dim", "16", "--crop-frames", "100",
         "--batch-speakers", "4", "--batch-utts", "3", "--batches-per-epoch", "3"]


def test_train_extract_and_score(dirs):
    from spkrec.io.kaldi_io import read_vectors
    root = dirs["root"]
    model = root / "rnn"
    assert main(["train-rnn", "-q", *SMALL, "--loss", "ge2e", "--epochs", "2", "--val-fraction", "0.34",
                 dirs["data"], str(model)]) == 0
    for name in ("final.pt", "checkpoint.pt", "loss_curve.png", "history.json"):
        assert (model / name).stat().st_size > 0, name
    assert main(["extract-embeddings", "-q", "--window", "150", "--shift", "50", str(model), dirs["data"],
                 str(root / "emb")]) == 0
    keys, emb = read_vectors(str(root / "emb" / "embedding.scp"))
    assert len(keys) == 72 and emb.shape == (72, 16)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    spk_keys, spk_emb = read_vectors(str(root / "emb" / "spk_embedding.scp"))
    assert spk_keys == dirs["spks"]
    np.testing.assert_allclose(spk_emb[0], emb[:6].mean(0), atol=1e-6)
    # the same embeddings as the library with the same window gives, in parallel (2 jobs)
    assert main(["extract-embeddings", "-q", "--window", "150", "--shift", "50", "--nj", "2",
                 str(model / "final.pt"), dirs["data"], str(root / "emb2")]) == 0
    np.testing.assert_allclose(read_vectors(str(root / "emb2" / "embedding.scp"))[1], emb, atol=1e-6)
    # a longer run resumes from the checkpoint of the 2-epoch run and only trains epoch 3
    assert main(["train-rnn", "-q", *SMALL, "--loss", "ge2e", "--epochs", "3", "--val-fraction", "0.34",
                 dirs["data"], str(model)]) == 0
    import json
    assert [h["epoch"] for h in json.loads((model / "history.json").read_text())] == [1, 2, 3]
    # embeddings are i-vector-like vector tables: the cosine back end scores them
    trials = root / "trials"
    trials.write_text("".join(f"{s} {u} {'target' if u.startswith(s) else 'nontarget'}\n"
                              for s in dirs["spks"] for u in keys[::6]))
    assert main(["score-cosine", "-q", str(root / "emb" / "spk_embedding.scp"), str(root / "emb" / "embedding.scp"),
                 str(trials), str(root / "cosine.txt")]) == 0
    assert len((root / "cosine.txt").read_text().splitlines()) == 12 * 12


def test_extract_rejects_other_features(dirs, capsys):
    root = dirs["root"]
    model = root / "rnn_small"
    assert main(["train-rnn", "-q", *SMALL, "--epochs", "1", "--val-fraction", "0", dirs["data"], str(model)]) == 0
    assert main(["extract-embeddings", "--deltas-order", "0", str(model), dirs["data"], str(root / "e")]) == 1
    err = capsys.readouterr().err
    assert "dimensions" in err and len(err.strip().splitlines()) == 1


def test_classify_rnn_scores_every_pair(dirs, capsys):
    root = dirs["root"]
    scores = root / "classify.txt"
    assert main(["classify-rnn", *SMALL, "--epochs", "4", "--lr", "0.01", "--confusion", str(root / "conf.png"),
                 dirs["enroll"], dirs["test"], str(scores)]) == 0
    out = capsys.readouterr().out
    assert "top-1" in out and "top-5" in out
    rows = [line.split() for line in scores.read_text().splitlines()]
    assert len(rows) == 12 * 24 and {r[0] for r in rows} == set(dirs["spks"])
    logp = np.array([float(r[2]) for r in rows]).reshape(24, 12)
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, atol=1e-4)
    assert (root / "conf.png").stat().st_size > 0
    assert main(["identify", str(scores), os.path.join(dirs["test"], "utt2spk")]) == 0


def test_classify_cnn_shares_the_classifier_report(dirs, capsys):
    """classify-cnn goes through the same closed-set path as classify-rnn: every pair scored, posteriors
    summing to one, the top-k line and the confusion image."""
    root = dirs["root"]
    scores = root / "classify_cnn.txt"
    assert main(["classify-cnn", "--arch", "vgg", "--channels", "2", "--embed-dim", "16", "--epochs", "1",
                 "--crop-frames", "40", "--batch-speakers", "4", "--batch-utts", "2", "--window", "100",
                 "--shift", "100", "--confusion", str(root / "conf_cnn.png"),
                 dirs["enroll"], dirs["test"], str(scores)]) == 0
    out = capsys.readouterr().out
    assert "classify-cnn: 24 test utterances, 12 speakers: top-1" in out
    rows = [line.split() for line in scores.read_text().splitlines()]
    assert len(rows) == 12 * 24 and {r[0] for r in rows} == set(dirs["spks"])
    logp = np.array([float(r[2]) for r in rows]).reshape(24, 12)
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, atol=1e-4)
    assert (root / "conf_cnn.png").stat().st_size > 0
