"""CNN speaker encoders: pooling and AAM-softmax against direct loops, k-NN identification against brute force,
augmentation against its formulas, seeded reruns and resume, bad input, scikit-learn conventions."""
import math

import numpy as np
import pytest

from spkrec.embeddings.knn import knn_identify, nearest
from spkrec.errors import SpkrecError


# ------------------------------------------------------------------------------------ k-NN (no torch)

def _brute_vote(E, labels, X, k, weights):
    """Loop over test rows: cosine to every enrolled row, the k largest vote (ties by lower index)."""
    speakers = sorted(set(labels))
    out = []
    for x in X:
        cos = [float(np.dot(x, e) / (np.linalg.norm(x) * np.linalg.norm(e))) for e in E]
        order = sorted(range(len(E)), key=lambda j: (-cos[j], j))[:k]
        votes = {s: 0.0 for s in speakers}
        for j in order:
            votes[labels[j]] += 1.0 if weights == "majority" else 1.0 / (1.0 - cos[j] + 1e-6)
        best = {s: max(cos[j] for j in range(len(E)) if labels[j] == s) for s in speakers}
        out.append([votes[s] + 1e-3 * best[s] for s in speakers])
    return np.array(out), speakers


def test_knn_k1_is_argmax_cosine():
    rng = np.random.default_rng(0)
    E = rng.normal(size=(40, 6)) * rng.uniform(0.5, 3, size=(40, 1))   # lengths must not matter
    labels = [f"s{i % 7}" for i in range(40)]
    X = rng.normal(size=(25, 6))
    scores, speakers = knn_identify(E, labels, X, k=1)
    cos = (X / np.linalg.norm(X, axis=1, keepdims=True)) @ (E / np.linalg.norm(E, axis=1, keepdims=True)).T
    assert [speakers[j] for j in scores.argmax(1)] == [labels[j] for j in cos.argmax(1)]
    sim, idx = nearest(E, X, 3)
    np.testing.assert_array_equal(idx[:, 0], cos.argmax(1))
    np.testing.assert_allclose(sim, np.sort(cos, axis=1)[:, ::-1][:, :3], atol=1e-12)


@pytest.mark.parametrize("weights", ["majority", "distance"])
def test_knn_vote_equals_loop(weights):
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(5, 8))
    labels = [f"spk{i % 5}" for i in range(30)]
    E = centres[[i % 5 for i in range(30)]] + 0.7 * rng.normal(size=(30, 8))
    X = centres[rng.integers(0, 5, 20)] + 0.7 * rng.normal(size=(20, 8))
    scores, speakers = knn_identify(E, labels, X, k=5, weights=weights)
    ref, ref_speakers = _brute_vote(E, labels, X, 5, weights)
    assert speakers == ref_speakers
    np.testing.assert_allclose(scores, ref, rtol=1e-9, atol=1e-12)


def test_knn_majority_agrees_with_sklearn_classifier():
    from sklearn.neighbors import KNeighborsClassifier
    rng = np.random.default_rng(2)
    E, X = rng.normal(size=(60, 5)), rng.normal(size=(40, 5))
    labels = [str(i % 4) for i in range(60)]
    scores, speakers = knn_identify(E, labels, X, k=3)              # k odd, 4 classes: ties are rare
    clf = KNeighborsClassifier(3, metric="cosine", algorithm="brute").fit(E, labels)
    proba = clf.predict_proba(X)
    clear = np.sort(proba, 1)[:, -1] > np.sort(proba, 1)[:, -2]
    assert clear.sum() > 20
    np.testing.assert_array_equal(np.array(speakers)[scores.argmax(1)][clear], clf.predict(X)[clear])


def test_knn_bad_input():
    with pytest.raises(SpkrecError, match="dimensions"):
        knn_identify(np.ones((3, 4)), ["a", "b", "c"], np.ones((2, 5)))
    with pytest.raises(SpkrecError, match="labels"):
        knn_identify(np.ones((3, 4)), ["a", "b"], np.ones((2, 4)))
    with pytest.raises(SpkrecError, match="faiss|unknown"):
        nearest(np.ones((3, 4)), np.ones((2, 4)), 2, index="annoy")


def test_identify_knn_cli(tmp_path, capsys):
    from spkrec.cli.main import main
    from spkrec.io.kaldi_io import write_vectors
    from spkrec.io.scores import read_scores
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, 6)) * 3
    enroll = [(f"s{s}-e{j}", centres[s] + rng.normal(size=6)) for s in range(4) for j in range(3)]
    test = [(f"s{s}-t{j}", centres[s] + rng.normal(size=6)) for s in range(4) for j in range(2)]
    write_vectors(tmp_path / "e.ark", tmp_path / "e.scp", [(k, v.astype(np.float32)) for k, v in enroll])
    write_vectors(tmp_path / "t.ark", tmp_path / "t.scp", [(k, v.astype(np.float32)) for k, v in test])
    (tmp_path / "e.u2s").write_text("".join(f"{k} {k.split('-')[0]}\n" for k, _ in enroll))
    (tmp_path / "t.u2s").write_text("".join(f"{k} {k.split('-')[0]}\n" for k, _ in test))
    rc = main(["identify-knn", "-k", "3", "--test-utt2spk", str(tmp_path / "t.u2s"), "--json", "--top-k", "2",
               "--neighbours", str(tmp_path / "nb.txt"), str(tmp_path / "e.scp"), str(tmp_path / "e.u2s"),
               str(tmp_path / "t.scp"), str(tmp_path / "scores.txt")])
    assert rc == 0
    import json
    result = json.loads(capsys.readouterr().out)
    rows = read_scores(str(tmp_path / "scores.txt"))
    assert len(rows) == 4 * 8
    mat = {}
    for spk, utt, s in rows:
        mat.setdefault(utt, {})[spk] = s
    top1 = np.mean([max(mat[u], key=mat[u].get) == u.split("-")[0] for u in mat])
    assert result["top1"] == pytest.approx(top1) and result["top1"] > 0.7
    lines = (tmp_path / "nb.txt").read_text().splitlines()
    assert len(lines) == 8 and all(len(line.split()) == 4 for line in lines)
    (tmp_path / "bad.u2s").write_text("s0-e0 s0\n")
    assert main(["identify-knn", str(tmp_path / "e.scp"), str(tmp_path / "bad.u2s"), str(tmp_path / "t.scp"),
                 str(tmp_path / "s2.txt")]) == 1
    assert "has no speaker" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ augmentation

def test_babble_snr_and_speed_formulas():
    from spkrec.embeddings.augment import add_babble, fixed_crop, speed_perturb
    rng = np.random.default_rng(4)
    x = rng.normal(size=(50, 10))
    others = [rng.normal(size=(50, 10)) + 1.0 for _ in range(3)]
    y = add_babble(x, others, 10.0)
    noise_power = np.exp(y.astype(np.float64)) - np.exp(x)           # what was added, in mel energies
    assert 10 * np.log10(np.exp(x).mean() / noise_power.mean()) == pytest.approx(10.0, abs=1e-3)
    np.testing.assert_allclose(noise_power / sum(np.exp(o) for o in others),
                               (noise_power / sum(np.exp(o) for o in others))[0, 0], rtol=1e-3)
    z = speed_perturb(x, 1.25)
    assert z.shape == (40, 10)
    np.testing.assert_allclose(z[1], 0.75 * x[1] + 0.25 * x[2], atol=1e-6)   # frame 1 sits at 1.25
    c = fixed_crop(x[:7], 20, rng)
    assert c.shape == (20, 10)
    np.testing.assert_array_equal(c, np.concatenate([x[:7]] * 3)[int(np.where((x[:7] == c[0]).all(1))[0][0]):][:20])


# ------------------------------------------------------------------------------------ torch parts

torch = pytest.importorskip("torch")

from spkrec.embeddings import AAMSoftmaxLoss, CNNEmbedder, CNNEncoder, RNNEmbedder  # noqa: E402
from spkrec.embeddings.cnn_model import SelfAttentivePooling, avg_pooling, stats_pooling  # noqa: E402


def test_self_attentive_pooling_against_loop():
    torch.manual_seed(0)
    pool = SelfAttentivePooling(5, heads=3, attention_dim=4)
    h = torch.randn(2, 7, 5)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    with torch.no_grad():
        a = pool.weights(h, mask)
        out = pool(h, mask)
        W1, b1, W2 = pool.hidden.weight.numpy(), pool.hidden.bias.numpy(), pool.score.weight.numpy()
    np.testing.assert_allclose(a.sum(2).numpy(), 1.0, atol=1e-6)
    for b in range(2):
        T = int(mask[b].sum())
        for k in range(3):
            e = [float(W2[k] @ np.maximum(W1 @ h[b, t].numpy() + b1, 0)) for t in range(T)]
            w = np.exp(np.array(e) - max(e))
            w /= w.sum()
            np.testing.assert_allclose(a[b, k, :T].numpy(), w, atol=1e-6)
            assert float(a[b, k, T:].abs().sum()) == 0.0
            ref = sum(w[t] * h[b, t].numpy() for t in range(T))
            np.testing.assert_allclose(out[b, 5 * k:5 * (k + 1)].numpy(), ref, atol=1e-5)


def test_stats_and_average_pooling_equal_numpy():
    h = torch.randn(3, 9, 4, dtype=torch.float64)
    mask = torch.tensor([[True] * 9, [True] * 5 + [False] * 4, [True] * 2 + [False] * 7])
    s, m = stats_pooling(h, mask).numpy(), avg_pooling(h, mask).numpy()
    for b, T in enumerate((9, 5, 2)):
        x = h[b, :T].numpy()
        np.testing.assert_allclose(s[b], np.concatenate([x.mean(0), x.std(0)]), atol=1e-10)
        np.testing.assert_allclose(m[b], x.mean(0), atol=1e-12)


def test_aam_softmax_equals_formula():
    torch.manual_seed(1)
    loss = AAMSoftmaxLoss(6, 4, margin=0.3, scale=20.0)
    raw, labels = torch.randn(10, 6, dtype=torch.float64), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3, 0, 1])
    loss = loss.double()
    W = loss.weight.detach().numpy()
    total = 0.0
    for x, y in zip(raw.numpy(), labels.numpy()):
        cos = np.array([x @ w / (np.linalg.norm(x) * np.linalg.norm(w)) for w in W])
        theta = math.acos(cos[y])
        logits = 20.0 * cos
        logits[y] = 20.0 * (math.cos(theta + 0.3) if theta + 0.3 <= math.pi else cos[y] - 0.3 * math.sin(0.3))
        total += -(logits[y] - np.log(np.exp(logits).sum()))
    assert float(loss(raw, labels).detach()) == pytest.approx(total / 10, rel=1e-9)
    np.testing.assert_allclose(loss.logits(raw).detach().numpy()[0],
                               20 * (W @ raw[0].numpy()) / np.linalg.norm(W, axis=1) / np.linalg.norm(raw[0].numpy()))


@pytest.mark.parametrize("arch", ["vgg", "resnet18", "resnet34", "resnet50"])
@pytest.mark.parametrize("pooling", ["avg", "stats", "attention"])
def test_encoder_shapes_and_unit_output(arch, pooling):
    enc = CNNEncoder(16, arch, 2, pooling, embed_dim=5, heads=2).eval()
    with torch.no_grad():
        out = enc(torch.randn(3, 37, 16))
    assert out.shape == (3, 5)
    np.testing.assert_allclose(out.norm(dim=1).numpy(), 1.0, atol=1e-6)


def test_too_short_input_refused_by_encoder_and_padded_by_extraction(caplog):
    from spkrec.embeddings.extract import embed_utterances
    torch.manual_seed(2)
    enc = CNNEncoder(16, "resnet18", 2, "stats", embed_dim=4).eval()
    x = np.random.default_rng(5).normal(size=(3, 16)).astype(np.float32)
    with pytest.raises(SpkrecError, match="fewer than the CNN's"):
        enc(torch.from_numpy(x)[None])
    with caplog.at_level("WARNING", logger="spkrec"):
        got = embed_utterances(enc, [x], window=300, shift=300)
    assert "repeated up to 8 frames" in caplog.text
    with torch.no_grad():
        ref = enc(torch.from_numpy(np.concatenate([x, x, x])[:8])[None]).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-6)


def test_extraction_batches_equal_one_by_one():
    from spkrec.embeddings.extract import embed_utterances
    torch.manual_seed(3)
    enc = CNNEncoder(16, "vgg", 2, "attention", embed_dim=4).eval()
    rng = np.random.default_rng(6)
    mats = [rng.normal(size=(T, 16)).astype(np.float32) for T in (50, 23, 31, 23, 90, 12)]
    got = embed_utterances(enc, mats, window=40, shift=20)
    one = np.concatenate([embed_utterances(enc, [m], window=40, shift=20) for m in mats])
    np.testing.assert_allclose(got, one, atol=1e-5)


def _toy(n_spk=6, n_utt=4, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_spk, dim))
    X = [(centres[s] + 0.5 * rng.normal(size=(int(rng.integers(30, 60)), dim))).astype(np.float32)
         for s in range(n_spk) for _ in range(n_utt)]
    y = [f"spk{s}" for s in range(n_spk) for _ in range(n_utt)]
    return X, y


SMALL = dict(arch="resnet18", channels=2, pooling="attention", heads=2, embed_dim=8, epochs=2, crop_frames=24,
             batch_speakers=3, batch_utts=2, batches_per_epoch=3, val_fraction=0.0, window=40, shift=40,
             babble=0.5, speed=0.5, device="cpu")


def test_seeded_reruns_bit_identical_and_resume(tmp_path):
    X, y = _toy()
    a = CNNEmbedder(**SMALL, random_state=3).fit(X, y)
    b = CNNEmbedder(**SMALL, random_state=3).fit(X, y)
    for (k, va), vb in zip(a.encoder_.state_dict().items(), b.encoder_.state_dict().values()):
        assert torch.equal(va, vb), k
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    c = CNNEmbedder(**SMALL, random_state=4).fit(X, y)
    assert not np.array_equal(a.transform(X), c.transform(X))
    # one epoch, "killed", resumed to two: the same model as the uninterrupted run
    CNNEmbedder(**dict(SMALL, epochs=1), random_state=3).fit(X, y, checkpoint_dir=tmp_path)
    d = CNNEmbedder(**SMALL, random_state=3).fit(X, y, checkpoint_dir=tmp_path)
    assert len(d.history_) == 2
    np.testing.assert_array_equal(a.transform(X), d.transform(X))
    a.save(tmp_path / "final.pt")
    e = CNNEmbedder.load(tmp_path / "final.pt")
    np.testing.assert_array_equal(a.transform(X), e.transform(X))
    assert e.get_params() == a.get_params()


def test_other_architecture_checkpoint_and_model_refused(tmp_path):
    X, y = _toy()
    CNNEmbedder(**dict(SMALL, epochs=1)).fit(X, y, checkpoint_dir=tmp_path)
    with pytest.raises(SpkrecError, match=r"other settings \(arch"):
        CNNEmbedder(**dict(SMALL, epochs=1, arch="vgg")).fit(X, y, checkpoint_dir=tmp_path)
    m = CNNEmbedder(**dict(SMALL, epochs=1)).fit(X, y)
    m.save(tmp_path / "cnn.pt")
    with pytest.raises(SpkrecError, match="another architecture.*channels"):
        CNNEmbedder(**dict(SMALL, epochs=1, channels=3, warm_start=str(tmp_path / "cnn.pt"))).fit(X, y)
    warm = CNNEmbedder(**dict(SMALL, epochs=0, warm_start=str(tmp_path / "cnn.pt"))).fit(X, y)
    for k, v in m.encoder_.state_dict().items():
        if "running" not in k and "num_batches" not in k:
            assert torch.equal(v, warm.encoder_.state_dict()[k]), k
    with pytest.raises(SpkrecError, match="not a spkrec RNN model"):
        RNNEmbedder.load(tmp_path / "cnn.pt")
    r = RNNEmbedder(num_layers=1, hidden_size=4, embed_dim=3, epochs=1, batches_per_epoch=1, val_fraction=0.0,
                    batch_speakers=2).fit(X, y)
    r.save(tmp_path / "rnn.pt")
    with pytest.raises(SpkrecError, match="not a spkrec CNN model"):
        CNNEmbedder.load(tmp_path / "rnn.pt")
    from spkrec.embeddings import load_embedder
    assert isinstance(load_embedder(tmp_path / "rnn.pt"), RNNEmbedder)
    assert isinstance(load_embedder(tmp_path / "cnn.pt"), CNNEmbedder)


def test_classifier_head_predicts_speakers():
    from spkrec.embeddings.classify import classify_closed_set
    X, y = _toy(n_spk=4, n_utt=6, seed=1)          # speakers differ by their mean: no CMN here
    model, rows = classify_closed_set(X[::2], y[::2], X[1::2], embedder=CNNEmbedder,
                                      **dict(SMALL, epochs=8, babble=0.0, speed=0.0, lr=3e-3, cmn=False))
    assert len(rows) == 4 * 12
    pred = model.predict(X[1::2])
    assert np.mean(np.array(pred) == np.array(y[1::2])) > 0.5              # chance is 0.25


def test_sklearn_clone_and_get_params():
    from sklearn.base import clone
    for est in (CNNEmbedder(arch="vgg", babble=0.3, babble_snr=(0.0, 5.0)), RNNEmbedder(cell="gru", hidden_size=7)):
        params = est.get_params()
        c = clone(est)
        assert c is not est and c.get_params() == params
        assert not hasattr(c, "encoder_")
        c.set_params(embed_dim=11)
        assert c.embed_dim == 11 and est.embed_dim != 11
    X, y = _toy()
    fitted = CNNEmbedder(**dict(SMALL, epochs=1)).fit(X, y)
    c = clone(fitted)
    assert hasattr(fitted, "encoder_") and not hasattr(c, "encoder_") and c.get_params() == fitted.get_params()
    assert all(not k.endswith("_") for k in fitted.get_params())


def test_results_table_has_auc_column(tmp_path, capsys):
    from spkrec.cli.main import main
    from spkrec.eval.metrics import roc_auc
    rng = np.random.default_rng(7)
    trials, scores, s, lab = [], [], [], []
    for m in range(3):
        for t in range(6):
            tar = t // 2 == m
            v = float(rng.normal(2.0 if tar else 0.0))
            trials.append(f"m{m} t{t} {'target' if tar else 'nontarget'}\n")
            scores.append(f"m{m} t{t} {v}\n")
            s.append(v)
            lab.append(tar)
    (tmp_path / "trials").write_text("".join(trials))
    (tmp_path / "s.txt").write_text("".join(scores))
    assert main(["results-table", "--trials", str(tmp_path / "trials"), f"{tmp_path / 's.txt'}:sys"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| system | EER % | minDCF | actDCF | Cllr | minCllr | AUC |"
    assert lines[2].endswith(f"| {roc_auc(np.array(s), np.array(lab)):.4f} |")
    # the AUC by its definition: P(target score > non-target score)
    tar, non = np.array(s)[np.array(lab)], np.array(s)[~np.array(lab)]
    assert roc_auc(np.array(s), np.array(lab)) == pytest.approx(np.mean(tar[:, None] > non[None, :]))


def test_cnn_verbs_without_torch(tmp_path):
    import subprocess
    import sys
    no_torch = ("import sys, importlib.abc\n"
                "class _NoTorch(importlib.abc.MetaPathFinder):\n"
                "    def find_spec(self, name, path, target=None):\n"
                "        if name.split('.')[0] == 'torch':\n"
                "            raise ModuleNotFoundError(\"No module named 'torch'\", name='torch')\n"
                "sys.meta_path.insert(0, _NoTorch())\n"
                "from spkrec.cli.main import main\n")
    for verb in (["train-cnn", str(tmp_path), str(tmp_path / "out")],
                 ["classify-cnn", str(tmp_path), str(tmp_path), str(tmp_path / "scores")]):
        r = subprocess.run([sys.executable, "-c", no_torch + f"sys.exit(main({verb!r}))"], capture_output=True,
                           text=True, timeout=120)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 1 and len(lines) == 1 and "pip install 'spkrec[rnn]'" in lines[0], r.stderr
    r = subprocess.run([sys.executable, "-c", no_torch + "from spkrec.embeddings import knn_identify; "
                        "import numpy as np; print(knn_identify(np.eye(3), ['a', 'b', 'b'], np.eye(3), 1)[1])"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "['a', 'b']" in r.stdout, r.stderr
