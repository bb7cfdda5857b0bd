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


def _scores_with_scale(rng, n_models, scale, d, n_tests=40, n_cohort=300):
    """Models whose raw scores are ``scale_m * z`` (z ~ N(0, 1) non-target, N(d, 1) target) with a
    per-model scale (as GMM-UBM scores spread with the enrolment size), and their cohort scores."""
    scales = scale * rng.uniform(0.8, 1.25, n_models)
    labels = rng.random((n_models, n_tests)) < 0.3
    z = rng.standard_normal((n_models, n_tests)) + d * labels
    cohort = scales[:, None] * rng.standard_normal((n_models, n_cohort))
    return scales[:, None] * z, labels, cohort, z


def test_znorm_then_calibration_recovers_the_llr_across_a_scale_mismatch():
    """Calibration trained on models of one score scale and applied to models of 2.5x that scale is
    over-confident on raw scores; Z-normalised first it recovers the closed-form LLR d z - d^2 / 2."""
    from spkrec.backend.calibration import LinearCalibration
    from spkrec.backend.score_norm import znorm
    from spkrec.eval.metrics import act_dcf, cllr, min_dcf
    rng = np.random.default_rng(0)
    d = 3.0
    train, train_lab, train_coh, _ = _scores_with_scale(rng, 200, 1.0, d)
    test, test_lab, test_coh, z = _scores_with_scale(rng, 200, 2.5, d)
    truth = d * z - d ** 2 / 2                                   # the LLR of N(d, 1) against N(0, 1)
    lab = test_lab.ravel()
    raw = LinearCalibration().fit(train.ravel(), train_lab.ravel()).transform(test.ravel())
    cal = LinearCalibration().fit(znorm(train, train_coh).ravel(), train_lab.ravel())
    llr = cal.transform(znorm(test, test_coh).ravel())
    assert np.abs(llr - truth.ravel()).mean() < 0.3 < np.abs(raw - truth.ravel()).mean()
    assert cal.scale_ == pytest.approx(d, rel=0.1)
    best = cllr(truth.ravel(), lab)
    assert cllr(llr, lab) < best + 0.02 and cllr(raw, lab) > best + 0.1
    md = min_dcf(llr, lab, 0.01)[0]
    assert act_dcf(llr, lab, p_target=0.01) < 1.15 * md
