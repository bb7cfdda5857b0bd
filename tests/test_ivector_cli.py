"""End to end: train-full-ubm, train-ivector-extractor, extract-ivectors on a small real-speech data dir."""
import glob
import os

import kaldiio
import numpy as np
import pytest

from spkrec.cli.main import main
from spkrec.gmm import DiagGMM
from spkrec.io.kaldi_io import write_matrices

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    import python_speech_features as psf
    import soundfile as sf
    files = sorted(glob.glob(os.path.join(ROOT, "data", "so762-mini", "WAVE", "*", "*.flac")))
    if not files:
        pytest.skip("data/so762-mini not present")
    speakers = sorted({os.path.basename(os.path.dirname(f)) for f in files})[:12]
    files = [f for f in files if os.path.basename(os.path.dirname(f)) in speakers]
    tmp = tmp_path_factory.mktemp("iv")
    data = tmp / "data"
    data.mkdir()
    items, utt2spk = [], {}
    for f in files:
        spk = os.path.basename(os.path.dirname(f))
        utt = f"{spk}-{os.path.basename(f)[:-5]}"
        sig, rate = sf.read(f, dtype="int16")
        items.append((utt, psf.mfcc(sig, rate, numcep=13).astype(np.float32)))
        utt2spk[utt] = spk
    items.sort()
    write_matrices(data / "raw.ark", data / "feats.scp", items)
    (data / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s in sorted(utt2spk.items())))
    spk2utt = {}
    for u, s in sorted(utt2spk.items()):
        spk2utt.setdefault(s, []).append(u)
    (data / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    X = np.concatenate([m for _, m in items])
    X = X - X.mean(0)
    diag = DiagGMM(n_components=8, n_iter=3).fit(X[::3])
    diag.save(tmp / "ubm" / "final.ubm.npz")
    return tmp, data, spk2utt


def test_cli_pipeline(setup):
    tmp, data, spk2utt = setup
    feat = ["--deltas-order", "0", "--cmvn", "utterance"]
    assert main(["train-full-ubm", "--num-iters", "2", *feat, str(tmp / "ubm"), str(data), str(tmp / "full")]) == 0
    assert (tmp / "full" / "final.ubm.npz").exists()
    assert main(["train-ivector-extractor", "--tv-dim", "6", "--num-iters", "3", "--pool-speakers",
                 str(tmp / "full"), str(data), str(tmp / "ext")]) == 0
    assert not (tmp / "ext" / "stats").exists()  # statistics files are removed after training
    assert main(["extract-ivectors", "--nj", "2", str(tmp / "ext"), str(data), str(tmp / "iv")]) == 0
    ivec = kaldiio.load_scp(str(tmp / "iv" / "ivector.scp"))
    assert len(ivec) == sum(len(u) for u in spk2utt.values())
    spk = kaldiio.load_scp(str(tmp / "iv" / "spk_ivector.scp"))
    assert sorted(spk) == sorted(spk2utt)
    s0 = sorted(spk2utt)[0]
    np.testing.assert_allclose(spk[s0], np.mean([ivec[u] for u in spk2utt[s0]], axis=0), rtol=1e-5, atol=1e-6)
    assert ivec[spk2utt[s0][0]].shape == (6,)
    counts = dict(line.split() for line in (tmp / "iv" / "num_utts.ark").read_text().splitlines())
    assert counts[s0] == str(len(spk2utt[s0]))
    # nj=1 gives the same i-vectors
    assert main(["extract-ivectors", str(tmp / "ext"), str(data), str(tmp / "iv1")]) == 0
    ivec1 = kaldiio.load_scp(str(tmp / "iv1" / "ivector.scp"))
    for u in ivec:
        np.testing.assert_array_equal(ivec[u], ivec1[u])


def test_cli_errors(setup, capsys):
    tmp, data, _ = setup
    assert main(["train-ivector-extractor", "--ubm", "full", str(tmp / "ubm"), str(data), str(tmp / "x")]) == 1
    assert "train-full-ubm" in capsys.readouterr().err
    assert main(["extract-ivectors", str(tmp / "missing"), str(data), str(tmp / "y")]) == 1
    assert "not found" in capsys.readouterr().err


def test_cli_statistics_stay_out_of_the_driver(setup, monkeypatch):
    """Training writes per-chunk statistics files (pooled per speaker) and trains from them; neither
    command gathers the statistics of all utterances (accumulate_stats) in the driver."""
    from spkrec.ivector import StatsArchive, stats
    tmp, data, spk2utt = setup

    def gathered(*args, **kwargs):
        raise AssertionError("accumulate_stats called: all statistics held in the driver")
    monkeypatch.setattr(stats, "accumulate_stats", gathered)
    feat = ["--deltas-order", "0", "--cmvn", "utterance"]
    assert main(["train-full-ubm", "--num-iters", "1", *feat, str(tmp / "ubm"), str(data), str(tmp / "full2")]) == 0
    assert main(["train-ivector-extractor", "--tv-dim", "4", "--num-iters", "2", "--pool-speakers", "--batch-size",
                 "4", "--keep-stats", "--nj", "2", str(tmp / "full2"), str(data), str(tmp / "ext2")]) == 0
    archive = StatsArchive.from_dir(tmp / "ext2" / "stats")
    assert archive.ids() == sorted(spk2utt) and archive.num_gauss == 8
    assert main(["extract-ivectors", str(tmp / "ext2"), str(data), str(tmp / "iv2")]) == 0
    assert len(kaldiio.load_scp(str(tmp / "iv2" / "ivector.scp"))) == sum(len(u) for u in spk2utt.values())


def _subset_dir(src, dst, speakers):
    """A data dir holding the given speakers of ``src`` (feats.scp, utt2spk, spk2utt filtered)."""
    dst.mkdir()
    spk_of = dict(line.split() for line in (src / "utt2spk").read_text().splitlines())
    for name in ("feats.scp", "utt2spk"):
        lines = [ln for ln in (src / name).read_text().splitlines() if spk_of[ln.split()[0]] in speakers]
        (dst / name).write_text("".join(ln + "\n" for ln in lines))
    lines = [ln for ln in (src / "spk2utt").read_text().splitlines() if ln.split()[0] in speakers]
    (dst / "spk2utt").write_text("".join(ln + "\n" for ln in lines))
    return dst


def test_cli_variance_update_heldout_and_min_count(setup, capsys, caplog):
    import logging
    from spkrec.io.atomic import load_npz
    from spkrec.ivector import IvectorExtractor, StatsArchive
    tmp, data, spk2utt = setup
    feat = ["--deltas-order", "0", "--cmvn", "utterance"]
    base = ["train-ivector-extractor", *feat, "--ubm", "diag", "--tv-dim", "4", "--num-iters", "3",
            "--update-variances", "true", "--heldout-speakers", "3"]
    assert main([*base, str(tmp / "ubm"), str(data), str(tmp / "sv1")]) == 0
    assert main([*base, "--nj", "2", str(tmp / "ubm"), str(data), str(tmp / "sv2")]) == 0
    a = IvectorExtractor.load(tmp / "sv1" / "extractor.npz")
    b = IvectorExtractor.load(tmp / "sv2" / "extractor.npz")
    np.testing.assert_array_equal(a.T_, b.T_)
    np.testing.assert_array_equal(a.covariances_, b.covariances_)
    assert a.update_variances and not np.array_equal(a.covariances_, a.ubm_covariances_)
    assert len(a.heldout_objective_history_) == 3 and a.heldout_objective_history_ == b.heldout_objective_history_
    logged = (tmp / "sv1" / "log" / "train_ivector_extractor.log").read_text().splitlines()
    assert logged[0].startswith("iteration 0 objective ") and " heldout-objective " in logged[0]
    assert not (tmp / "sv1" / "stats").exists() and not (tmp / "sv1" / "heldout_stats").exists()
    assert main(["extract-ivectors", str(tmp / "sv1"), str(data), str(tmp / "sv1iv")]) == 0
    # a separate held-out data dir: 3 speakers not in training
    speakers = sorted(spk2utt)
    train = _subset_dir(data, tmp / "train9", set(speakers[:9]))
    held = _subset_dir(data, tmp / "held3", set(speakers[9:]))
    assert main(["train-ivector-extractor", *feat, "--ubm", "diag", "--tv-dim", "4", "--num-iters", "2", "--keep-stats",
                 "--heldout-data", str(held), str(tmp / "ubm"), str(train), str(tmp / "hd")]) == 0
    hd = IvectorExtractor.load(tmp / "hd" / "extractor.npz")
    assert len(hd.heldout_objective_history_) == 2
    assert StatsArchive.from_dir(tmp / "hd" / "heldout_stats").num_utts == sum(len(spk2utt[s]) for s in speakers[9:])
    occ = sum(StatsArchive.from_dir(tmp / "hd" / "stats").load(k)[0].sum(0, dtype=np.float64)
              for k in range(len(StatsArchive.from_dir(tmp / "hd" / "stats").paths)))
    # --min-gauss-count: the Gaussians below it leave the extractor and the saved UBM
    threshold = float(np.sort(occ)[2] + 1e-3)  # drops the 3 lightest Gaussians
    with caplog.at_level(logging.INFO, logger="spkrec"):
        assert main(["train-ivector-extractor", *feat, "--ubm", "diag", "--tv-dim", "4", "--num-iters", "2",
                     "--min-gauss-count", str(threshold), str(tmp / "ubm"), str(train), str(tmp / "mc")]) == 0
    assert "dropped 3 of 8 Gaussians" in caplog.text
    arrays, _ = load_npz(tmp / "mc" / "final.ubm.npz", "DiagGMM")
    kept = IvectorExtractor.load(tmp / "mc" / "extractor.npz")
    assert arrays["means"].shape[0] == 5 == kept.T_.shape[0]
    np.testing.assert_array_equal(kept.kept_gaussians_, np.flatnonzero(occ >= threshold))
    assert main(["extract-ivectors", str(tmp / "mc"), str(data), str(tmp / "mciv")]) == 0
    assert len(kaldiio.load_scp(str(tmp / "mciv" / "ivector.scp"))) == sum(len(u) for u in spk2utt.values())
    # bad input: one clear line
    assert main(["train-ivector-extractor", "--ubm", "diag", "--heldout-speakers", "12", str(tmp / "ubm"), str(data),
                 str(tmp / "bad")]) == 1
    err = capsys.readouterr().err
    assert "--heldout-speakers 12 leaves no training speaker" in err and "Traceback" not in err
