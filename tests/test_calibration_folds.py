"""Calibration trials of background speakers: rotated fold models, and score normalisation before
calibration (the scale of raw scores changes with the enrolment size; normalised scores transfer)."""
import itertools
import os

import numpy as np
import pytest

from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.io.datadir import DataDir, read_table, write_data_dir
from spkrec.io.trials import make_folds, read_trials


def _toy_data(tmp_path, counts):
    utt2spk = {f"s{i}-u{j:02d}": f"s{i}" for i, n in enumerate(counts) for j in range(n)}
    wav = {u: f"/nonexistent/{u}.wav" for u in utt2spk}
    return write_data_dir(tmp_path / "data", wav, utt2spk, {f"s{i}": "mf"[i % 2] for i in range(len(counts))})


def test_rotated_folds_brute_force(tmp_path):
    """Every speaker of a fold gets min(rotations, n) models on cyclic windows of its sorted utterances;
    each model is tried against every fold utterance except its own enrolment ones."""
    counts = [6, 6, 5, 3, 6, 7, 6, 6]
    data = _toy_data(tmp_path, counts)
    folds = make_folds(data, tmp_path / "folds", num_folds=2, num_enroll=3, rotations=6)
    spk2utt = {f"s{i}": [f"s{i}-u{j:02d}" for j in range(n)] for i, n in enumerate(counts)}
    for f, (d, rows) in enumerate(folds):
        fold = [f"s{i}" for i in range(len(counts)) if i % 2 == f]
        enroll = DataDir(os.path.join(d, "enroll"))
        orig = read_table(os.path.join(d, "enroll", "utt2orig"))
        expected_models, expected_rows = {}, []
        tests = sorted(u for s in fold for u in spk2utt[s] if len(spk2utt[s]) > 3)
        for s in fold:
            utts = spk2utt[s]
            if len(utts) < 4:
                continue                      # s3: 3 utterances, not enough for 3 + 1
            for j in range(min(6, len(utts))):
                window = [utts[(j + i) % len(utts)] for i in range(3)]
                expected_models[f"{s}-r{j}"] = sorted(window)
                expected_rows += [(f"{s}-r{j}", u, u.startswith(s + "-")) for u in tests if u not in window]
        got = {m: sorted(orig[u] for u in utts) for m, utts in enroll.spk2utt.items()}
        assert got == expected_models
        assert sorted(rows) == sorted(expected_rows) and rows == read_trials(os.path.join(d, "test", "trials"))
        assert sorted(DataDir(os.path.join(d, "test")).utts) == tests
        # the enrolment dir's tables are the originals' under the new ids, its genders the speakers'
        assert set(read_table(os.path.join(d, "enroll", "wav.scp")).values()) <= \
            {f"/nonexistent/{u}.wav" for u in data.utt2spk}
        assert all(read_table(os.path.join(d, "enroll", "wav.scp"))[u] == f"/nonexistent/{orig[u]}.wav"
                   for u in orig)
        assert read_table(os.path.join(d, "enroll", "spk2gender")) == \
            {m: "mf"[int(m[1]) % 2] for m in expected_models}
    # rotations=1 is the one-model split of make-trials, with no stale utt2orig left behind
    folds = make_folds(data, tmp_path / "folds", num_folds=2, num_enroll=3)
    assert not os.path.exists(tmp_path / "folds" / "fold0" / "enroll" / "utt2orig")
    assert {r[0] for r in folds[0][1]} == {"s0", "s2", "s4", "s6"}


def test_rotated_folds_cli(tmp_path, capsys):
    data = _toy_data(tmp_path, [4] * 6)
    assert main(["make-folds", "-q", "--num-folds", "2", "--num-enroll", "3", "--rotations", "4", data.path,
                 str(tmp_path / "cal")]) == 0
    rows = read_trials(tmp_path / "cal" / "fold1" / "test" / "trials")
    # 3 speakers x 4 models, each against the 12 utterances but its own 3: 1 target, 8 non-targets
    assert len(rows) == 3 * 4 * 9 and sum(r[2] for r in rows) == 12
    assert main(["make-folds", "--rotations", "0", data.path, str(tmp_path / "c2")]) != 0
    with pytest.raises(SpkrecError, match="--rotations"):
        make_folds(data, tmp_path / "c3", num_folds=2, rotations=0)
