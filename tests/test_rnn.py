"""RNN speaker embeddings: masking, losses against direct loops, sampling, seeding, resume, real speech."""
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spkrec.embeddings import (ContrastiveLoss, GE2ELoss, RNNEmbedder, SoftmaxLoss, SpeakerEncoder,  # noqa: E402
                               TripletLoss, embed_utterances, ge2e_similarity)
from spkrec.embeddings.sampling import nm_batches, pad_batch, random_crop, sliding_windows  # noqa: E402
from spkrec.errors import SpkrecError  # noqa: E402

MINI = os.path.join(os.path.dirname(__file__), "..", "data", "so762-mini")


def _unit(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


# ----------------------------------------------------------------------------------------- encoder

@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["mean", "last", "attentive"])
def test_padded_batch_equals_one_by_one(cell, bidirectional, pooling):
    torch.manual_seed(1)
    enc = SpeakerEncoder(7, cell, 2, 12, bidirectional, pooling, 5).eval()
    xs = [torch.randn(T, 7) for T in (6, 11, 2, 11, 1)]
    batch, lengths = pad_batch([x.numpy() for x in xs])
    batch = torch.from_numpy(batch)
    batch[0, 6:] = 1e3                                    # garbage in the padding must not matter
    batch[2, 2:] = -7.0
    with torch.no_grad():
        padded = enc(batch, torch.from_numpy(lengths))
        single = torch.cat([enc(x[None]) for x in xs])
    assert padded.shape == (5, 5)
    np.testing.assert_allclose(padded.numpy(), single.numpy(), atol=2e-6)
    np.testing.assert_allclose(np.linalg.norm(padded.numpy(), axis=1), 1.0, atol=1e-6)


def test_pooling_semantics_against_rnn_outputs():
    torch.manual_seed(2)
    x = torch.randn(1, 9, 4)
    for pooling in ("mean", "last"):
        enc = SpeakerEncoder(4, "gru", 1, 6, False, pooling, 3).eval()
        with torch.no_grad():
            out, _ = enc.rnn((x - enc.input_mean) / enc.input_std)
            pooled = out[0].mean(0) if pooling == "mean" else out[0, -1]
            np.testing.assert_allclose(enc.embed_raw(x)[0].numpy(), enc.projection(pooled).numpy(), atol=1e-6)


def test_attentive_pooling_against_loop():
    from spkrec.embeddings.model import AttentiveStatsPooling
    torch.manual_seed(3)
    pool = AttentiveStatsPooling(5, 4)
    h = torch.randn(2, 7, 5)
    mask = torch.tensor([[True] * 7, [True] * 4 + [False] * 3])
    with torch.no_grad():
        got = pool(h, mask).numpy()
        for b, n in ((0, 7), (1, 4)):
            hb = h[b, :n].numpy().astype(np.float64)
            W, c, v = pool.hidden.weight.numpy(), pool.hidden.bias.numpy(), pool.score.weight.numpy()[0]
            e = np.array([v @ np.tanh(W @ ht + c) for ht in hb])
            a = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
            mean = (a[:, None] * hb).sum(0)
            std = np.sqrt((a[:, None] * hb ** 2).sum(0) - mean ** 2)
            np.testing.assert_allclose(got[b], np.concatenate([mean, std]), atol=1e-5)


def test_bad_architecture_and_input():
    with pytest.raises(SpkrecError, match="pooling"):
        SpeakerEncoder(4, pooling="max")
    with pytest.raises(SpkrecError, match="layers"):
        SpeakerEncoder(4, num_layers=4)
    enc = SpeakerEncoder(4, hidden_size=4, embed_dim=3)
    with pytest.raises(SpkrecError, match="expects"):
        enc(torch.zeros(1, 5, 3))


# ------------------------------------------------------------------------------------------ losses

def _tiny_batch(seed=0, n=3, m=3, dim=4):
    g = torch.Generator().manual_seed(seed)
    raw = torch.randn(n * m, dim, generator=g, dtype=torch.float64)
    labels = torch.arange(n).repeat_interleave(m)
    return raw, labels


def test_softmax_loss_is_cross_entropy():
    raw, labels = _tiny_batch()
    loss = SoftmaxLoss(4, 3).double()
    logits = raw.numpy() @ loss.classifier.weight.detach().numpy().T + loss.classifier.bias.detach().numpy()
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    expected = -np.mean(logp[np.arange(9), labels.numpy()])
    assert loss(raw, labels).item() == pytest.approx(expected, rel=1e-10)


def _triplet_loop(raw, labels, margin):
    e, lab = _unit(raw.numpy()), labels.numpy()
    d = ((e[:, None, :] - e[None, :, :]) ** 2).sum(-1)
    terms = []
    for a in range(len(lab)):
        for p in range(len(lab)):
            if p == a or lab[p] != lab[a]:
                continue
            negs = [d[a, n] for n in range(len(lab)) if lab[n] != lab[a]]
            farther = [x for x in negs if x > d[a, p]]
            chosen = min(farther) if farther else max(negs)
            terms.append(max(0.0, d[a, p] - chosen + margin))
    return np.mean(terms), d


def test_triplet_loss_equals_loop_with_semi_hard_mining():
    raw, labels = _tiny_batch(seed=4, n=3, m=3)
    expected, _ = _triplet_loop(raw, labels, 0.3)
    got = TripletLoss(0.3)(raw, labels).item()
    assert got == pytest.approx(expected, rel=1e-9) and got > 0
    # anchor 0's positive is farther than every negative: the farthest negative is used
    raw2 = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.9, 0.1], [0.8, -0.2]], dtype=torch.float64)
    lab2 = torch.tensor([0, 0, 1, 1])
    expected2, d2 = _triplet_loop(raw2, lab2, 0.2)
    assert d2[0, 1] > max(d2[0, 2], d2[0, 3])
    assert TripletLoss(0.2)(raw2, lab2).item() == pytest.approx(expected2, rel=1e-9)


def test_contrastive_loss_equals_formula():
    raw, labels = _tiny_batch(seed=5, n=3, m=2)
    e, lab = _unit(raw.numpy()), labels.numpy()
    margin = 1.2
    same, diff = [], []
    for i in range(len(lab)):
        for j in range(i + 1, len(lab)):
            dist = np.linalg.norm(e[i] - e[j])
            (same if lab[i] == lab[j] else diff).append(dist ** 2 if lab[i] == lab[j] else max(0, margin - dist) ** 2)
    expected = 0.5 * np.mean(same) + 0.5 * np.mean(diff)
    assert ContrastiveLoss(margin)(raw, labels).item() == pytest.approx(expected, rel=1e-9)


def test_ge2e_similarity_and_loss_equal_loop():
    N, M = 3, 4
    raw, labels = _tiny_batch(seed=6, n=N, m=M, dim=5)
    e = _unit(raw.numpy()).reshape(N, M, 5)
    w, b = 7.5, -2.0
    S = np.zeros((N, M, N))
    for j in range(N):
        for i in range(M):
            for k in range(N):
                if k == j:
                    c = np.mean([e[j, m] for m in range(M) if m != i], axis=0)
                else:
                    c = e[k].mean(0)
                S[j, i, k] = w * (e[j, i] @ c) / (np.linalg.norm(e[j, i]) * np.linalg.norm(c)) + b
    got = ge2e_similarity(torch.from_numpy(e), torch.tensor(w, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))
    np.testing.assert_allclose(got.numpy(), S, rtol=1e-10)
    loss = GE2ELoss(init_w=w, init_b=b).double()
    expected = np.mean([-S[j, i, j] + np.log(np.exp(S[j, i]).sum()) for j in range(N) for i in range(M)])
    value = loss(raw, labels)
    assert value.item() == pytest.approx(expected, rel=1e-10)
    value.backward()
    assert loss.w.grad is not None and loss.b.grad is not None


def test_losses_reject_unusable_batches():
    raw, labels = _tiny_batch(n=3, m=1)
    for loss in (TripletLoss(), ContrastiveLoss(), GE2ELoss()):
        with pytest.raises(SpkrecError):
            loss(raw, labels)


# ------------------------------------------------------------------------------------- sampling

def test_nm_batches_are_speaker_major_and_cover_everything():
    spk_utts = [[0, 1, 2], [3, 4], [5, 6, 7, 8], [9, 10, 11], [12]]
    batches = nm_batches(spk_utts, 2, 3, 10, np.random.default_rng(0))
    owner = {u: s for s, us in enumerate(spk_utts) for u in us}
    seen = set()
    for utts, labels in batches:
        assert utts.shape == labels.shape == (6,)
        assert labels[0] == labels[2] and labels[3] == labels[5] and labels[0] != labels[3]
        assert all(owner[u] == s for u, s in zip(utts, labels))
        seen.update(utts.tolist())
    assert seen == set(owner)
    again = nm_batches(spk_utts, 2, 3, 10, np.random.default_rng(0))
    assert all((a[0] == b[0]).all() for a, b in zip(batches, again))


def test_crops_windows_and_padding():
    rng = np.random.default_rng(0)
    x = np.arange(50, dtype=np.float32)[:, None].repeat(2, 1)
    c = random_crop(x, 20, rng)
    assert c.shape == (20, 2) and np.all(np.diff(c[:, 0]) == 1)
    assert random_crop(x, 80, rng).shape == (50, 2)
    np.testing.assert_array_equal(sliding_windows(50, 20, 10), [0, 10, 20, 30])
    np.testing.assert_array_equal(sliding_windows(55, 20, 10), [0, 10, 20, 30, 35])
    np.testing.assert_array_equal(sliding_windows(7, 20, 10), [0])
    batch, lengths = pad_batch([x[:3], x[:5]])
    assert batch.shape == (2, 5, 2) and lengths.tolist() == [3, 5] and np.all(batch[0, 3:] == 0)


def test_embed_utterances_averages_windows():
    torch.manual_seed(0)
    enc = SpeakerEncoder(3, "gru", 1, 8, False, "mean", 4).eval()
    rng = np.random.default_rng(1)
    mats = [rng.normal(size=(35, 3)).astype(np.float32), rng.normal(size=(7, 3)).astype(np.float32)]
    got = embed_utterances(enc, mats, window=20, shift=10)
    with torch.no_grad():
        wins = [enc(torch.from_numpy(mats[0][s:s + 20])[None])[0].numpy() for s in (0, 10, 15)]
        first = np.mean(wins, axis=0)
        second = enc(torch.from_numpy(mats[1])[None])[0].numpy()
    np.testing.assert_allclose(got[0], first / np.linalg.norm(first), atol=1e-6)
    np.testing.assert_allclose(got[1], second, atol=1e-6)


# ------------------------------------------------------------------------------ training (synthetic)

def _synthetic(num_spk=6, per_spk=4, dim=5, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_spk, dim))
    X = [(c + rng.normal(size=(int(rng.integers(30, 60)), dim))).astype(np.float32)
         for c in centres for _ in range(per_spk)]
    return X, [f"s{i}" for i in range(num_spk) for _ in range(per_spk)]


SMALL = dict(cell="gru", num_layers=1, hidden_size=8, embed_dim=6, crop_frames=20, batch_speakers=3, batch_utts=2,
             batches_per_epoch=3, window=20, shift=10, lr=0.01)


@pytest.mark.parametrize("loss", ["softmax", "triplet", "contrastive", "ge2e"])
def test_same_seed_gives_identical_embeddings(loss):
    X, y = _synthetic()
    a = RNNEmbedder(loss=loss, epochs=2, val_fraction=0.0, random_state=3, **SMALL).fit(X, y)
    b = RNNEmbedder(loss=loss, epochs=2, val_fraction=0.0, random_state=3, **SMALL).fit(X, y)
    c = RNNEmbedder(loss=loss, epochs=2, val_fraction=0.0, random_state=4, **SMALL).fit(X, y)
    ea, eb, ec = a.transform(X), b.transform(X), c.transform(X)
    assert ea.shape == (len(X), 6) and ea.dtype == np.float32
    np.testing.assert_array_equal(ea, eb)
    assert not np.array_equal(ea, ec)


def test_resume_from_checkpoint_equals_uninterrupted(tmp_path):
    X, y = _synthetic()
    params = dict(loss="ge2e", val_fraction=0.34, random_state=1, **SMALL)
    full = RNNEmbedder(epochs=4, **params).fit(X, y, checkpoint_dir=tmp_path / "full")
    RNNEmbedder(epochs=2, **params).fit(X, y, checkpoint_dir=tmp_path / "part")
    assert (tmp_path / "part" / "loss_curve.png").stat().st_size > 0
    resumed = RNNEmbedder(epochs=4, **params).fit(X, y, checkpoint_dir=tmp_path / "part")
    for (k, v), (k2, v2) in zip(full.encoder_.state_dict().items(), resumed.encoder_.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    assert [h["loss"] for h in full.history_] == [h["loss"] for h in resumed.history_]
    assert len(resumed.history_) == 4 and resumed.history_[0]["val_eer"] is not None
    with pytest.raises(SpkrecError, match="other settings.*lr"):
        RNNEmbedder(epochs=5, **dict(params, lr=0.02)).fit(X, y, checkpoint_dir=tmp_path / "part")


def test_save_load_round_trip_and_classifier(tmp_path):
    X, y = _synthetic()
    model = RNNEmbedder(loss="softmax", epochs=2, val_fraction=0.0, **SMALL).fit(X, y)
    frames = np.concatenate(X).astype(np.float64)              # inputs are standardised with training stats
    np.testing.assert_allclose(model.encoder_.input_mean.numpy(), frames.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.encoder_.input_std.numpy(), frames.std(0), rtol=1e-5)
    model.meta_ = {"features": {"cmvn": "none"}}
    model.save(tmp_path / "m.pt")
    back = RNNEmbedder.load(tmp_path / "m.pt")
    np.testing.assert_array_equal(model.transform(X), back.transform(X))
    logp = back.predict_log_proba(X)
    assert logp.shape == (len(X), 6)
    np.testing.assert_allclose(np.exp(logp).sum(1), 1.0, atol=1e-5)
    assert back.classes_ == sorted(set(y)) and back.meta_ == model.meta_
    assert back.predict(X[:2]) == [back.classes_[i] for i in logp[:2].argmax(1)]
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(SpkrecError, match="bad.pt"):
        RNNEmbedder.load(tmp_path / "bad.pt")
    ge2e = RNNEmbedder(loss="ge2e", epochs=1, val_fraction=0.0, **SMALL).fit(X, y)
    with pytest.raises(SpkrecError, match="--loss softmax"):
        ge2e.predict_log_proba(X)


# ---------------------------------------------------------------------------------- real speech

@pytest.fixture(scope="module")
def mini_feats(tmp_path_factory):
    """MFCC (20 ceps) + deltas + sliding CMN + energy VAD of 30 so762-mini speakers."""
    from spkrec.features.pipeline import FeatureLoader, compute_features, compute_vad
    from spkrec.io.datadir import subset_data_dir
    from spkrec.io.prepare import prepare_so762
    root = tmp_path_factory.mktemp("rnn_mini")
    full = prepare_so762(MINI, root / "full")
    spks = sorted(set(full.utt2spk.values()))[:30]
    data = subset_data_dir(full, root / "data", spks=spks)
    compute_features(data.path, root / "mfcc", "mfcc", options={"num_ceps": 20, "num_mel_bins": 30, "dither": 0.0})
    compute_vad(data.path)
    loader = FeatureLoader(os.path.join(data.path, "feats.scp"), os.path.join(data.path, "vad.scp"))
    return root, data.path, loader


def test_training_on_real_speech_lowers_loss_and_beats_chance(mini_feats):
    _, data_dir, loader = mini_feats
    from spkrec.io.datadir import DataDir
    utts = loader.utt_ids
    y = [DataDir(data_dir).utt2spk[u] for u in utts]
    model = RNNEmbedder(loss="ge2e", cell="gru", num_layers=1, hidden_size=64, embed_dim=64, crop_frames=100,
                        batch_speakers=8, batch_utts=4, batches_per_epoch=10, epochs=5, lr=0.005,
                        val_fraction=0.2, random_state=0)
    model.fit(utts, y, loader=loader)
    losses = [h["loss"] for h in model.history_]
    eers = [h["val_eer"] for h in model.history_]
    assert len(model.val_speakers_) == 6 and not set(model.val_speakers_) & set(model.classes_)
    assert losses[-1] < 0.8 * losses[0], losses
    assert eers[-1] < 0.35, eers                            # chance is 0.5


def test_classify_closed_set_on_arrays():
    from spkrec.embeddings.classify import classify_closed_set, identification_report
    X, y = _synthetic(num_spk=4, per_spk=5, dim=5, seed=2)
    enroll = [i for i in range(len(X)) if i % 5 < 3]
    test = [i for i in range(len(X)) if i % 5 >= 3]
    model, rows = classify_closed_set([X[i] for i in enroll], [y[i] for i in enroll], [X[i] for i in test],
                                      **dict(SMALL, epochs=8, lr=0.03, batch_speakers=4))
    assert len(rows) == 4 * len(test) and model.classes_ == ["s0", "s1", "s2", "s3"]
    top1, topk, k = identification_report(rows, {j: y[i] for j, i in enumerate(test)}, k=2)
    assert k == 2 and topk >= top1 >= 0.75                    # well-separated synthetic speakers
