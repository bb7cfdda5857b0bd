"""choose_ivector_size / `spkrec choose-ivector-size`: the UBM size and T dimension picked on held-out
background speakers, on synthetic data whose speaker subspace dimension is known."""
import numpy as np
import pytest

from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.io.kaldi_io import write_matrices
from spkrec.ivector import autosize, choose_ivector_size, speaker_folds


def _synth(n_spk=12, n_utt=4, frames=20, seed=0, D=6, C=4, R=4):
    """Frames of a C-component GMM whose means move with a speaker factor y (R dims) per speaker."""
    rng = np.random.default_rng(seed)
    means, V = rng.normal(0, 4, (C, D)), rng.normal(0, 1.0, (C, D, R))
    data, utt2spk = {}, {}
    for s in range(n_spk):
        offset = np.einsum("cdr,r->cd", V, rng.normal(size=R))
        for u in range(n_utt):
            z = rng.integers(C, size=frames)
            utt = f"s{s:02d}-u{u}"
            data[utt] = (means[z] + offset[z] + rng.normal(size=(frames, D))).astype(np.float32)
            utt2spk[utt] = f"s{s:02d}"
    return data, utt2spk


def _table(rows):
    return {(r["num_gauss"], r["tv_dim"]): r for r in rows}


@pytest.mark.parametrize("seed", [0, 1])
def test_picks_the_generating_size(seed):
    """Speaker factors of dimension 4, 4 Gaussians, 20 frames per utterance: T dim 1 cannot hold the speaker,
    128 Gaussians over-fit 640 training frames; (4, 4) wins on both criteria."""
    data, utt2spk = _synth(seed=seed)
    best, rows = choose_ivector_size(data, utt2spk, num_gauss=(4, 128), tv_dims=(1, 4), n_folds=3)
    assert (best["num_gauss"], best["tv_dim"]) == (4, 4)
    t = _table(rows)
    assert len(t) == 4 and all(len(r["min_cllr_folds"]) == 3 for r in rows)
    for other in [(4, 1), (128, 1), (128, 4)]:
        assert t[other]["min_cllr"] > t[4, 4]["min_cllr"]
        assert t[other]["eer"] > t[4, 4]["eer"]
    assert best["min_cllr"] == t[4, 4]["min_cllr"]


def test_folds_are_disjoint_and_cover_the_speakers():
    speakers = [f"spk{i}" for i in range(11)]
    folds = speaker_folds(speakers + speakers[:3], 3, random_state=5)  # repeats count once
    assert sorted(s for f in folds for s in f) == sorted(speakers)
    assert sorted(len(f) for f in folds) == [3, 4, 4]
    assert speaker_folds(speakers, 3, 5) == folds and speaker_folds(speakers, 3, 6) != folds


def test_heldout_speakers_never_train(monkeypatch):
    data, utt2spk = _synth(n_spk=9, n_utt=3)
    seen, score = [], autosize._heldout_scores

    def spy(ivec, spk, spec, train, held):
        seen.append((set(spk[train]), set(spk[held])))
        return score(ivec, spk, spec, train, held)
    monkeypatch.setattr(autosize, "_heldout_scores", spy)
    choose_ivector_size(data, utt2spk, num_gauss=(4,), tv_dims=(2,), n_folds=3)
    assert len(seen) == 3
    for train, held in seen:
        assert not train & held and train | held == set(utt2spk.values())
    assert set.union(*(h for _, h in seen)) == set(utt2spk.values())  # every speaker held out once


def test_deterministic_with_a_seed():
    data, utt2spk = _synth(n_spk=9, n_utt=3)
    a = choose_ivector_size(data, utt2spk, num_gauss=(4,), tv_dims=(2, 4), n_folds=3, random_state=3)
    b = choose_ivector_size(data, utt2spk, num_gauss=(4,), tv_dims=(2, 4), n_folds=3, random_state=3)
    assert a == b


@pytest.mark.parametrize("kwargs, words", [
    (dict(n_folds=7), "12 speakers for 7 folds"),
    (dict(n_folds=1), "at least 2 folds"),
    (dict(num_gauss=()), "grid is empty"),
    (dict(tv_dims=[]), "grid is empty"),
    (dict(criterion="auc"), "use min_cllr or eer"),
])
def test_bad_input_names_the_problem(kwargs, words):
    data, utt2spk = _synth(n_utt=2)
    with pytest.raises(SpkrecError, match=words):
        choose_ivector_size(data, utt2spk, **{"num_gauss": (4,), "tv_dims": (2,), **kwargs})


def test_cli_writes_sizes_and_grid(tmp_path, capsys):
    data, utt2spk = _synth(seed=2)
    d = tmp_path / "data"
    d.mkdir()
    write_matrices(d / "raw.ark", d / "feats.scp", sorted(data.items()))
    (d / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    spk2utt = {}
    for u, s in sorted(utt2spk.items()):
        spk2utt.setdefault(s, []).append(u)
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    opts = ["--deltas-order", "0", "--cmvn", "none"]
    assert main(["choose-ivector-size", *opts, "--num-gauss", "4,128", "--tv-dims", "1,4", str(d),
                 str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "sizes.txt").read_text() == "num_gauss=4\ntv_dim=4\n"
    grid = (tmp_path / "out" / "grid.md").read_text()
    assert grid.count("\n| ") == 5 and "| 4 | 4 |" in grid and "yes |" in grid
    capsys.readouterr()
    assert main(["choose-ivector-size", *opts, "--num-folds", "7", str(d), str(tmp_path / "bad")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "12 speakers for 7 folds" in err
    assert not (tmp_path / "bad").exists()
