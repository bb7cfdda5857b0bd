"""Trials and score files: round trips, malformed lines, alignment, make-trials."""
import itertools
import os

import numpy as np
import pytest

from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.io.datadir import DataDir, write_data_dir
from spkrec.io.scores import read_scores, scores_for_trials, write_scores
from spkrec.io.trials import make_trials, read_trials, write_trials


def cli_error(capsys, argv):
    """Run the CLI expecting a clean one-line error; returns the message."""
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 1
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


def write(path, text):
    path.write_text(text)
    return str(path)


def test_trials_round_trip(tmp_path):
    rows = [("spkA", "uttB", True), ("spkA", "uttC", False), ("spkB", "uttB", "nontarget"),
            ("spkB", "uttC", "target")]
    p = tmp_path / "trials"
    write_trials(p, rows)
    assert p.read_text() == "spkA uttB target\nspkA uttC nontarget\nspkB uttB nontarget\nspkB uttC target\n"
    assert read_trials(p) == [("spkA", "uttB", True), ("spkA", "uttC", False), ("spkB", "uttB", False),
                              ("spkB", "uttC", True)]


def test_trials_key_without_labels(tmp_path):
    p = write(tmp_path / "key", "a x\nb y target\n")
    assert read_trials(p, require_labels=False) == [("a", "x", None), ("b", "y", True)]
    with pytest.raises(SpkrecError, match=r"key:1: expected 3 fields"):
        read_trials(p)
    write_trials(tmp_path / "key2", [("a", "x", None)])
    assert (tmp_path / "key2").read_text() == "a x\n"


@pytest.mark.parametrize("text, match", [
    ("a x target\n\nb y nontarget\n", r"trials:2: blank line"),
    ("a x target\nb\n", r"trials:2: expected 3 fields"),
    ("a x target\nb y target extra\n", r"trials:2: expected 3 fields"),
    ("a x target\nb y tgt\n", r"trials:2: trial label 'tgt' is not 'target' or 'nontarget'"),
    ("a x target\na x nontarget\n", r"trials:2: trial a x repeats line 1"),
])
def test_trials_malformed(tmp_path, text, match):
    p = write(tmp_path / "trials", text)
    with pytest.raises(SpkrecError, match=match):
        read_trials(p)


def test_trials_missing_file(tmp_path):
    with pytest.raises(SpkrecError, match="trials file not found"):
        read_trials(tmp_path / "nope")


def test_scores_round_trip(tmp_path):
    rows = [("a", "x", 1.5), ("a", "y", -2.25e-7), ("b", "x", np.float32(3.1234567)), ("b", "y", 1e6)]
    p = tmp_path / "scores.txt"
    write_scores(p, rows)
    assert p.read_text().splitlines() == ["a x 1.500000", "a y -0.000000", "b x 3.123457",
                                          "b y 1000000.000000"]
    back = read_scores(p)
    assert [r[:2] for r in back] == [r[:2] for r in rows]
    np.testing.assert_allclose([r[2] for r in back], [float(r[2]) for r in rows], atol=5e-7)
    assert all(isinstance(r[2], float) for r in back)


@pytest.mark.parametrize("text, match", [
    ("a x 1.0\n\n", r"scores.txt:2: blank line"),
    ("a x 1.0\nb y\n", r"scores.txt:2: expected 3 fields"),
    ("a x 1.0\nb y high\n", r"scores.txt:2: score 'high' is not a number"),
    ("a x 1.0\nb y nan\n", r"scores.txt:2: score is NaN"),
    ("a x 1.0\na x 2.0\n", r"scores.txt:2: trial a x repeats line 1"),
])
def test_scores_malformed(tmp_path, text, match):
    p = write(tmp_path / "scores.txt", text)
    with pytest.raises(SpkrecError, match=match):
        read_scores(p)


def test_write_scores_nan_keeps_old_file(tmp_path):
    p = tmp_path / "scores.txt"
    write_scores(p, [("a", "x", 1.0)])
    with pytest.raises(SpkrecError, match="NaN"):
        write_scores(p, [("a", "x", 2.0), ("a", "y", float("nan"))])
    assert p.read_text() == "a x 1.000000\n"  # atomic: the failed write left the old file
    assert sorted(os.listdir(tmp_path)) == ["scores.txt"]


def test_scores_for_trials(tmp_path):
    trials = write(tmp_path / "trials", "b y target\na x nontarget\na y nontarget\n")
    scores = write(tmp_path / "scores", "a x 0.5\na y -1.25\nb y 3\nz z 9\n")
    s, lab = scores_for_trials(scores, trials)
    assert s.dtype == np.float64 and lab.dtype == bool
    np.testing.assert_array_equal(s, [3.0, 0.5, -1.25])
    np.testing.assert_array_equal(lab, [True, False, False])
    write(tmp_path / "scores", "a x 0.5\nb y 3\n")
    with pytest.raises(SpkrecError, match=r"trials:3: trial a y has no score in .*scores"):
        scores_for_trials(scores, trials)


def _toy_data(tmp_path, counts):
    """Data dir with speakers s0, s1, ... having ``counts[i]`` utterances (fake audio paths)."""
    utt2spk = {f"s{i}-u{j:02d}": f"s{i}" for i, n in enumerate(counts) for j in range(n)}
    wav = {u: f"/nonexistent/{u}.wav" for u in utt2spk}
    return write_data_dir(tmp_path / "data", wav, utt2spk, {f"s{i}": "mf"[i % 2] for i in range(len(counts))})


@pytest.mark.parametrize("num_test", [None, 2])
def test_make_trials(tmp_path, num_test):
    data = _toy_data(tmp_path, [5, 6, 4])
    rows = make_trials(data, tmp_path / "enroll", tmp_path / "test", tmp_path / "trials", num_enroll=2,
                       num_test=num_test)
    enroll, test = DataDir(tmp_path / "enroll"), DataDir(tmp_path / "test")
    # brute force: first 2 sorted utterances enrol, the next (all or 2) are tests
    exp_enroll, exp_test = [], []
    for spk, n in zip(["s0", "s1", "s2"], [5, 6, 4]):
        utts = [f"{spk}-u{j:02d}" for j in range(n)]
        exp_enroll += utts[:2]
        exp_test += utts[2:] if num_test is None else utts[2:4]
    assert enroll.utts == exp_enroll and test.utts == exp_test
    assert set(enroll.spk2gender) == {"s0", "s1", "s2"} and enroll.spk2utt["s1"] == ["s1-u00", "s1-u01"]
    expected = [(s, u, u.startswith(s + "-"))
                for s, u in itertools.product(["s0", "s1", "s2"], sorted(exp_test))]
    assert rows == expected
    assert read_trials(tmp_path / "trials") == expected
    assert sum(r[2] for r in rows) == len(exp_test)


def test_make_trials_short_speaker(tmp_path, capsys):
    data = _toy_data(tmp_path, [5, 2, 4])
    match = r"speaker 's1' has 2 utterance\(s\), fewer than --num-enroll 2 \+ 1"
    with pytest.raises(SpkrecError, match=match):
        make_trials(data, tmp_path / "e", tmp_path / "t", tmp_path / "trials", num_enroll=2)
    assert not (tmp_path / "trials").exists()
    err = cli_error(capsys, ["make-trials", data.path, str(tmp_path / "e"), str(tmp_path / "t"),
                             str(tmp_path / "trials"), "--num-enroll", "2"])
    assert "'s1' has 2" in err
    rc = main(["make-trials", data.path, str(tmp_path / "e"), str(tmp_path / "t"), str(tmp_path / "trials"),
               "--num-enroll", "2", "--skip-short"])
    assert rc == 0
    rows = read_trials(tmp_path / "trials")
    assert {r[0] for r in rows} == {"s0", "s2"} and len(rows) == 2 * (3 + 2)
    assert "s1" not in DataDir(tmp_path / "t").spk2utt


def test_make_folds(tmp_path, capsys):
    data = _toy_data(tmp_path, [5, 6, 4, 5, 3, 4, 4])
    speakers = [f"s{i}" for i in range(7)]
    from spkrec.io.trials import make_folds
    folds = make_folds(data, tmp_path / "folds", num_folds=3, num_enroll=2)
    seen = []
    for f, (d, rows) in enumerate(folds):
        fold = [s for i, s in enumerate(speakers) if i % 3 == f]
        seen += fold
        train = DataDir(os.path.join(d, "train"))
        assert sorted(set(train.utt2spk.values())) == sorted(set(speakers) - set(fold))
        assert rows == read_trials(os.path.join(d, "test", "trials"))
        assert {r[0] for r in rows} == set(fold)          # models: the fold's own speakers only
        for spk, utt, target in rows:
            assert target == (data.utt2spk[utt] == spk) and data.utt2spk[utt] in fold
        assert not set(DataDir(os.path.join(d, "enroll")).utts) & set(DataDir(os.path.join(d, "test")).utts)
    assert sorted(seen) == speakers
    err = cli_error(capsys, ["make-folds", "--num-folds", "4", data.path, str(tmp_path / "f4")])
    assert "7 speakers" in err and "--num-folds" in err


def test_make_cohort_trials_and_trial_indices(tmp_path, capsys):
    """The cohort keys are every left id against every right id (what recipes built with awk)."""
    from spkrec.io.trials import trial_indices
    left = _toy_data(tmp_path / "left", [2, 3])
    right = _toy_data(tmp_path / "right", [1, 2])
    out = tmp_path / "cohort.trials"
    assert main(["make-cohort-trials", "-q", str(left.path), str(right.path), str(out)]) == 0
    right_utts = ["s0-u00", "s1-u00", "s1-u01"]
    assert out.read_text().splitlines() == [f"{s} {u}" for s in ["s0", "s1"] for u in right_utts]
    assert main(["make-cohort-trials", "-q", "--left", "utterances", "--right", "speakers", str(left.path),
                 str(right.path), str(out)]) == 0
    assert out.read_text().splitlines()[:3] == ["s0-u00 s0", "s0-u00 s1", "s0-u01 s0"]
    rows, mi, ti = trial_indices(out, ["x", "s0-u00", "s0-u01", "s1-u00", "s1-u01", "s1-u02"], ["s1", "s0"])
    assert len(rows) == 10 and list(mi[:4]) == [1, 1, 2, 2] and list(ti[:4]) == [1, 0, 1, 0]
    with pytest.raises(SpkrecError, match=r"cohort.trials:1: enrolment id 's0-u00'"):
        trial_indices(out, ["s0"], ["s0", "s1"])


def test_cohort_matrix_and_normalise(tmp_path):
    """score_norm.normalise by name equals the textbook formulas on a cohort read from a score file."""
    from spkrec.backend.score_norm import normalise
    from spkrec.io.scores import cohort_matrix, score_indices
    rng = np.random.default_rng(0)
    coh = rng.normal(size=(2, 4))
    path = tmp_path / "ecoh"
    write_scores(path, [(m, f"c{j}", coh[i, j]) for i, m in enumerate(["a", "b"]) for j in range(4)])
    ids, E = cohort_matrix(path, 0, ["b", "a"])
    assert ids == ["b", "a"]
    np.testing.assert_allclose(E, np.round(coh[::-1], 6))
    rows = [("a", "t1", 1.0), ("b", "t1", 2.0), ("a", "t2", 3.0)]
    models, tests, ei, ti = score_indices(rows)
    assert (models, tests, list(ei), list(ti)) == (["a", "b"], ["t1", "t2"], [0, 1, 0], [0, 0, 1])
    Ec = np.round(coh, 6)
    z = normalise("z", [1.0, 2.0, 3.0], Ec, None, ei, ti)
    np.testing.assert_allclose(z, [(1 - Ec[0].mean()) / Ec[0].std(), (2 - Ec[1].mean()) / Ec[1].std(),
                                   (3 - Ec[0].mean()) / Ec[0].std()])
    T = rng.normal(size=(2, 5))
    top = np.sort(Ec[0])[-2:], np.sort(T[0])[-2:]
    a_s = normalise("as", [1.0], Ec[:1], T[:1], [0], [0], top_n=2)
    np.testing.assert_allclose(a_s, [0.5 * ((1 - top[0].mean()) / top[0].std() + (1 - top[1].mean()) / top[1].std())])
    with pytest.raises(SpkrecError, match="unknown"):
        normalise("q", [1.0], Ec, T)
