"""System bundles on real speech: a GMM-UBM (UBM trained on so762-mini) used on the 16 TIMIT-sample speakers
through `spkrec export-system / enroll / verify / identify-files` and `spkrec.load_system`.

References: the bundle's front end against the recipe path (compute-feats + compute-vad + FeatureLoader);
its scores against `enroll-gmm` + `score-gmm` (and `extract-ivectors` + `score-plda`) on data dirs; the
calibration trained with scikit-learn's logistic regression; identification accuracy on held-out sentences.
"""
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

import spkrec
from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.io.atomic import save_npz

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONF = os.path.join(ROOT, "recipes", "mini", "conf")
MFCC, VAD = os.path.join(CONF, "mfcc.conf"), os.path.join(CONF, "vad.conf")


def cli(*args):
    return main([str(a) for a in args])


def one_error_line(capsys, *args):
    """Run a CLI that must fail; return its single stderr line."""
    assert cli(*args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if "error:" in line]
    assert len(err) == 1, err
    return err[0]


def read_table(path):
    with open(path) as f:
        return dict(line.split(None, 1) for line in f.read().splitlines())


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """so762-mini features, a 64-Gaussian UBM on them, its bundle; TIMIT-sample lists (8 + 2 per speaker)."""
    root = tmp_path_factory.mktemp("system")
    so = root / "so762"
    assert cli("prepare-data", "-q", "so762", os.path.join(ROOT, "data", "so762-mini"), so) == 0
    assert cli("compute-feats", "-q", "--config", MFCC, "--seed=0", so, root / "mfcc") == 0
    assert cli("compute-vad", "-q", "--config", VAD, so, root / "vad") == 0
    assert cli("train-ubm", "-q", "--num-gauss", 64, "--num-iters", 2, "--num-iters-per-split", 2, so,
               root / "ubm") == 0
    gmm = root / "systems" / "gmm_ubm"
    assert cli("export-system", "-q", "--kind", "gmm_ubm", "--ubm", root / "ubm", "--feat-config", MFCC,
               "--vad-config", VAD, "--seed=0", "--out", gmm) == 0
    timit = root / "timit"
    assert cli("prepare-data", "-q", "timit", os.path.join(ROOT, "data", "timit-sample"), timit) == 0
    wav = read_table(timit / "wav.scp")
    spk2utt = {s: u.split() for s, u in read_table(timit / "spk2utt").items()}
    assert len(spk2utt) == 16
    enroll = {s: [wav[u] for u in utts[:8]] for s, utts in spk2utt.items()}
    test = {s: [wav[u] for u in utts[8:]] for s, utts in spk2utt.items()}
    system = spkrec.load_system(gmm)
    return {"root": root, "so": so, "gmm": gmm, "timit": timit, "enroll": enroll, "test": test,
            "spk2utt": spk2utt, "system": system, "db": system.enroll(enroll)}


# --------------------------------------------------------------------------------- bundle contents
def test_bundle_records_front_end_and_models(env):
    cfg = json.load(open(env["gmm"] / "system.json"))
    assert cfg["format_version"] == spkrec.system.FORMAT_VERSION and cfg["kind"] == "gmm_ubm"
    assert cfg["sample_rate"] == 16000
    assert cfg["features"]["options"]["num_ceps"] == 20 and cfg["features"]["options"]["seed"] == 0
    assert cfg["vad"]["options"]["energy_threshold"] == 5.5
    assert cfg["postprocess"] == {"deltas_order": 2, "cmvn": "sliding", "cmvn_window": 300}
    assert cfg["calibration"] == {"calibrated": False, "scale": 1.0, "offset": 0.0, "target_prior": None,
                                  "source": None}
    assert cfg["thresholds"]["bayes"] == 0.0 and cfg["thresholds"]["default"] == "bayes"
    assert sorted(os.listdir(env["gmm"])) == ["system.json", "ubm.npz"]
    with np.load(env["gmm"] / "ubm.npz", allow_pickle=False) as z:
        assert z["means"].shape == (64, 60)
    again = env["root"] / "again"   # exporting onto an existing bundle replaces it
    for name in ("first", "second"):
        assert cli("export-system", "-q", "--kind", "gmm_ubm", "--ubm", env["root"] / "ubm", "--feat-config", MFCC,
                   "--vad-config", VAD, "--seed=0", "--name", name, "--out", again) == 0
    assert spkrec.load_system(again).name == "second" and sorted(os.listdir(again)) == ["system.json", "ubm.npz"]
    assert spkrec.load_system(again).fingerprint == env["system"].fingerprint


def test_front_end_equals_recipe_features(env):
    """Audio -> frames in the bundle equals compute-feats + compute-vad + FeatureLoader (deltas, CMVN, VAD)."""
    from spkrec.features.pipeline import FeatureLoader
    so = env["so"]
    loader = FeatureLoader(so / "feats.scp", so / "vad.scp")
    wav = read_table(so / "wav.scp")
    for utt in loader.utt_ids[::120]:
        np.testing.assert_array_equal(env["system"].frames(wav[utt]), loader(utt))


@pytest.fixture(scope="module")
def timit_dirs(env, tmp_path_factory):
    """The recipe path on the same files: TIMIT features, VAD, enrolment (8) and test (2) data dirs, trials."""
    root = tmp_path_factory.mktemp("timitdirs")
    timit = env["timit"]
    assert cli("compute-feats", "-q", "--config", MFCC, "--seed=0", timit, root / "mfcc") == 0
    assert cli("compute-vad", "-q", "--config", VAD, timit, root / "vad") == 0
    assert cli("subset-data-dir", "-q", "--first-utts-per-spk", 8, timit, root / "enroll") == 0
    assert cli("subset-data-dir", "-q", "--last-utts-per-spk", 2, timit, root / "test") == 0
    spks = sorted(env["spk2utt"])
    tests = sorted(read_table(root / "test" / "utt2spk"))
    with open(root / "trials", "w") as f:
        f.writelines(f"{s} {t}\n" for t in tests for s in spks)
    return {"root": root, "spks": spks, "tests": tests, "wav": read_table(timit / "wav.scp")}


def _read_scores(path):
    out = {}
    for line in open(path):
        s, t, v = line.split()
        out[(s, t)] = float(v)
    return out


def _check_scores(system, db, dirs, ref, atol):
    spks = dirs["spks"]
    for t in dirs["tests"][::5]:
        got = dict(zip(db.names, system.scores(db, dirs["wav"][t])))
        np.testing.assert_allclose([got[s] for s in spks], [ref[(s, t)] for s in spks], atol=atol)


def test_scores_equal_enroll_gmm_score_gmm(env, timit_dirs):
    """The bundle's scores equal the recipe verbs' on data dirs of the same files."""
    d = timit_dirs["root"]
    ubm = env["gmm"] / "ubm.npz"
    assert cli("enroll-gmm", "-q", ubm, d / "enroll", d / "models.npz") == 0
    assert cli("score-gmm", "-q", ubm, d / "models.npz", d / "test", d / "trials", d / "scores") == 0
    _check_scores(env["system"], env["db"], timit_dirs, _read_scores(d / "scores"), 2e-6)


def test_ivector_bundles_equal_extract_ivectors_and_backends(env, timit_dirs, tmp_path):
    """i-vector bundles (PLDA, and LDA + cosine) score as extract-ivectors + score-plda / score-cosine."""
    so, d, r = env["so"], timit_dirs["root"], tmp_path
    assert cli("train-full-ubm", "-q", "--num-iters", 1, env["root"] / "ubm", so, r / "full") == 0
    assert cli("train-ivector-extractor", "-q", "--tv-dim", 20, "--num-iters", 2, r / "full", so, r / "ext") == 0
    for name in ("train", "enroll", "test"):
        data = so if name == "train" else d / name
        assert cli("extract-ivectors", "-q", r / "ext", data, r / f"iv_{name}") == 0
    assert cli("train-backend", "-q", "--steps", "center,lda:15,lnorm,plda", r / "iv_train" / "ivector.scp",
               so / "utt2spk", r / "plda.npz") == 0
    scoring = [("plda", ["--backend", r / "plda.npz"], "score-plda", [r / "plda.npz"]),
               ("cosine", ["--backend", r / "plda.npz"], "score-cosine", ["--backend", r / "plda.npz"])]
    for kind, opts, verb, verb_opts in scoring:
        assert cli(verb, "-q", *verb_opts, "--enroll-spk2utt", d / "enroll" / "spk2utt", r / "iv_enroll" / "ivector.scp",
                   r / "iv_test" / "ivector.scp", d / "trials", r / f"{kind}.scores") == 0
        out = r / f"ivec_{kind}"
        assert cli("export-system", "-q", "--kind", "ivector", "--extractor", r / "ext", "--scoring", kind, *opts,
                   "--feat-config", MFCC, "--vad-config", VAD, "--seed=0", "--out", out) == 0
        system = spkrec.load_system(out)
        assert sorted(os.listdir(out)) == ["backend.npz", "extractor.npz", "system.json", "ubm.npz"]
        db = system.enroll(env["enroll"])
        _check_scores(system, db, timit_dirs, _read_scores(r / f"{kind}.scores"), 2e-3)
        hits = [system.identify(db, f).decision == s for s, files in env["test"].items() for f in files]
        print(f"i-vector {kind} bundle (T dim 20): TIMIT-sample top-1 {100 * np.mean(hits):.1f} %")
        assert np.mean(hits) >= 0.5


def test_rnn_bundle_equals_extract_embeddings_and_score_cosine(env, timit_dirs, tmp_path):
    """An RNN bundle (tiny GRU, one epoch: the comparison, not the accuracy, is tested) scores as
    extract-embeddings + score-cosine."""
    pytest.importorskip("torch")
    so, d, r = env["so"], timit_dirs["root"], tmp_path
    small = ["--cell", "gru", "--layers", 1, "--hidden", 32, "--embed-dim", 16, "--crop-frames", 100,
             "--batch-speakers", 4, "--batch-utts", 3, "--batches-per-epoch", 3, "--epochs", 1]
    assert cli("train-rnn", "-q", *small, so, r / "rnn") == 0
    for name in ("enroll", "test"):
        assert cli("extract-embeddings", "-q", r / "rnn", d / name, r / f"em_{name}") == 0
    assert cli("score-cosine", "-q", "--enroll-spk2utt", d / "enroll" / "spk2utt", r / "em_enroll" / "embedding.scp",
               r / "em_test" / "embedding.scp", d / "trials", r / "cos.scores") == 0
    out = r / "rnn_cosine"
    assert cli("export-system", "-q", "--kind", "rnn", "--rnn", r / "rnn", "--feat-config", MFCC, "--vad-config", VAD,
               "--seed=0", "--out", out) == 0
    assert sorted(os.listdir(out)) == ["encoder.pt", "system.json"]
    system = spkrec.load_system(out)
    _check_scores(system, system.enroll(env["enroll"]), timit_dirs, _read_scores(r / "cos.scores"), 1e-5)


# --------------------------------------------------------------------------------- the targets
def test_identify_timit_speakers(env):
    """16 speakers enrolled from 8 sentences each; their other 2 sentences identified (closed set)."""
    system, db = env["system"], env["db"]
    hits = [system.identify(db, f, top=5).decision == spk for spk, files in env["test"].items() for f in files]
    accuracy = np.mean(hits)
    print(f"TIMIT-sample closed-set top-1: {100 * accuracy:.1f} % of {len(hits)} (UBM from so762-mini)")
    assert len(hits) == 32 and accuracy >= 0.90


@pytest.fixture(scope="module")
def calibrated(env, tmp_path_factory):
    """Calibration (scikit-learn logistic regression) on 8 of the 16 speakers; the other 8 are for testing."""
    from sklearn.linear_model import LogisticRegression
    root = tmp_path_factory.mktemp("cal")
    spks = sorted(env["spk2utt"])
    cal = [s for s in spks if s[0] == "F"][0::2] + [s for s in spks if s[0] == "M"][0::2]
    rest = [s for s in spks if s not in cal]
    system = env["system"]
    db = system.enroll({s: env["enroll"][s] for s in cal})
    scores, trials = [], []
    for spk in cal:
        for f in env["test"][spk]:
            utt = os.path.basename(f)
            for name, score in zip(db.names, system.scores(db, f)):
                scores.append(f"{name} {spk}_{utt} {score:.6f}")
                trials.append(f"{name} {spk}_{utt} {'target' if name == spk else 'nontarget'}")
    (root / "scores").write_text("\n".join(scores) + "\n")
    (root / "trials").write_text("\n".join(trials) + "\n")
    x = np.array([float(line.split()[2]) for line in scores])[:, None]
    y = np.array([line.endswith(" target") for line in trials])
    lr = LogisticRegression(C=1e6, class_weight="balanced").fit(x, y)   # balanced: log-odds = LLR
    scale, offset = float(lr.coef_[0, 0]), float(lr.intercept_[0])
    save_npz(root / "cal.npz", "LinearCalibration", {}, {"scale": scale, "offset": offset, "target_prior": 0.5})
    out = root / "gmm_ubm_cal"
    assert cli("export-system", "-q", "--kind", "gmm_ubm", "--ubm", env["root"] / "ubm", "--feat-config", MFCC,
               "--vad-config", VAD, "--seed=0", "--calibration", root / "cal.npz", "--eer-threshold-from",
               root / "scores", root / "trials", "--out", out) == 0
    return {"path": out, "system": spkrec.load_system(out), "scale": scale, "offset": offset, "rest": rest,
            "scores": x[:, 0], "labels": y}


def test_calibration_and_thresholds_in_bundle(calibrated):
    from sklearn.metrics import roc_curve
    system = calibrated["system"]
    cfg = system.config
    assert system.calibrated and cfg["calibration"]["calibrated"]
    assert system.scale == pytest.approx(calibrated["scale"]) and system.offset == pytest.approx(calibrated["offset"])
    assert system.llr(2.0) == pytest.approx(2.0 * calibrated["scale"] + calibrated["offset"])
    assert cfg["thresholds"]["target_prior"] == 0.5 and cfg["thresholds"]["default"] == "bayes"
    assert system.threshold == 0.0
    eer = cfg["thresholds"]["eer"]
    assert eer["llr"] == pytest.approx(system.scale * eer["score"] + system.offset)
    # the EER threshold lies where miss and false-alarm rates cross (sklearn's ROC)
    fpr, tpr, thr = roc_curve(calibrated["labels"], calibrated["scores"])
    i = np.argmin(np.abs((1 - tpr) - fpr))
    assert abs(fpr[i] - eer["eer"]) <= 0.07
    assert system.decision_threshold(target_prior=0.01) == pytest.approx(np.log(99))
    assert system.decision_threshold(threshold=1.5) == 1.5


def test_verify_true_and_wrong_speaker(env, calibrated):
    system, rest = calibrated["system"], calibrated["rest"]
    db = system.enroll({s: env["enroll"][s] for s in rest})
    true = [system.verify(db, s, f).decision for s in rest for f in env["test"][s]]
    wrong = [system.verify(db, rest[(i + 1) % len(rest)], f).decision
             for i, s in enumerate(rest) for f in env["test"][s]]
    print(f"verify: {true.count('accept')}/{len(true)} true accepted, {wrong.count('reject')}/{len(wrong)} "
          "wrong rejected")
    # the wrong speaker is the next one of the same gender (the hard case): "most files" each way
    assert true.count("accept") > len(true) / 2 and wrong.count("reject") > len(wrong) / 2
    assert true.count("accept") + wrong.count("reject") >= 0.8 * (len(true) + len(wrong))


def test_open_set_rejects_unknown_speaker(env, calibrated):
    system, rest = calibrated["system"], calibrated["rest"]
    unknown, known = rest[-1], rest[:-1]
    db = system.enroll({s: env["enroll"][s] for s in known})
    impostor = [system.identify(db, f, open_set=True).decision for f in env["enroll"][unknown] + env["test"][unknown]]
    genuine = [system.identify(db, f, open_set=True).decision == s for s in known for f in env["test"][s]]
    print(f"open set: {impostor.count('unknown')}/{len(impostor)} files of {unknown} unknown, "
          f"{sum(genuine)}/{len(genuine)} enrolled speakers' files identified")
    assert impostor.count("unknown") > len(impostor) / 2
    assert sum(genuine) >= 0.8 * len(genuine)


def test_any_rate_and_stereo(env, tmp_path):
    from scipy.signal import resample_poly
    system, db = env["system"], env["db"]
    spk = "FAEM0"
    path = env["test"][spk][0]
    x, rate = sf.read(path, dtype="int16")
    ref = system.verify(db, spk, path).score
    sf.write(tmp_path / "stereo.wav", np.stack([x, x], 1), rate)
    assert system.verify(db, spk, tmp_path / "stereo.wav").score == pytest.approx(ref, abs=1e-6)
    assert system.verify(db, spk, (np.stack([x, x], 1).astype(np.float32), rate)).score == pytest.approx(ref, abs=1e-6)
    for new_rate in (44100, 8000):
        y = resample_poly(x.astype(np.float64), new_rate // 100, rate // 100)
        sf.write(tmp_path / f"r{new_rate}.flac", np.clip(y, -32768, 32767).astype(np.int16), new_rate)
        got = system.verify(db, spk, tmp_path / f"r{new_rate}.flac").score
        print(f"{new_rate} Hz copy: score {got:.3f} vs {ref:.3f} at 16 kHz")
        if new_rate > rate:   # upsampled: the same band, resampled back to 16 kHz
            assert got == pytest.approx(ref, abs=0.1)
        else:                 # 8 kHz has lost the 4-7.6 kHz band the models use: lower, still the best speaker
            assert 0 < got < ref
        assert system.identify(db, tmp_path / f"r{new_rate}.flac").decision == spk


# --------------------------------------------------------------------------------- databases and CLI
def test_db_replace_remove_and_roundtrip(env, tmp_path):
    system = env["system"]
    a, b = env["enroll"]["FAEM0"], env["enroll"]["MARC0"]
    db = system.enroll({"alice": a[:2], "bob": b[:3]})
    test = env["test"]["FAEM0"][0]
    before = system.verify(db, "alice", test).score
    system.enroll({"alice": a}, db)                       # re-enrolling replaces
    assert len(db) == 2 and db.files("alice") == a
    after = system.verify(db, "alice", test).score
    assert after != before
    assert after == pytest.approx(system.verify(env["db"], "FAEM0", test).score, abs=1e-9)
    for path in (tmp_path / "db", tmp_path / "db.npz"):
        db.save(path)
        back = system.load_db(path)
        assert back.names == db.names and back.files("bob") == b[:3]
        assert system.verify(back, "alice", test).score == pytest.approx(after, abs=1e-12)
    db.remove("alice")
    assert db.names == ["bob"]
    with pytest.raises(SpkrecError, match="not enrolled"):
        db.remove("alice")


def test_cli_enroll_verify_identify_json(env, tmp_path, capsys):
    S, D = env["gmm"], tmp_path / "speakers"
    enroll, test = env["enroll"], env["test"]
    assert cli("enroll", "--json", "-q", S, D, "--speaker", "FAEM0", *enroll["FAEM0"],
               "--speaker", "MARC0", *enroll["MARC0"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["speaker"] for x in lines] == ["FAEM0", "MARC0"] and lines[0]["files"] == enroll["FAEM0"]
    lst = tmp_path / "list.csv"
    lst.write_text("speaker,path\n" + "".join(f"FALK0,{f}\n" for f in enroll["FALK0"]))
    assert cli("enroll", "-q", S, D, "--list", lst) == 0
    assert capsys.readouterr().out.strip() == "FALK0 enrolled from 8 file(s)"
    assert cli("verify", "--json", "-q", S, D, "FAEM0", test["FAEM0"][0], test["MARC0"][0]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [o["decision"] for o in out] == ["accept", "reject"] or out[0]["llr"] > out[1]["llr"]
    assert set(out[0]) == {"file", "speaker", "score", "llr", "threshold", "decision"}
    assert cli("identify-files", "--json", "-q", "--top", 2, "--open-set", S, D, *test["MARC0"],
               test["FVMH0"][0]) == 0
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len(out) == 3 and set(out[0]) == {"file", "top", "decision"}
    assert [o["decision"] for o in out[:2]] == ["MARC0", "MARC0"]
    assert len(out[0]["top"]) == 2 and out[0]["top"][0]["score"] >= out[0]["top"][1]["score"]
    assert cli("identify-files", "-q", S, D, test["FALK0"][0]) == 0
    assert capsys.readouterr().out.split()[1] == "FALK0"
    assert cli("enroll", "-q", S, D, "--remove", "FALK0") == 0
    assert capsys.readouterr().out.strip() == "FALK0 removed"
    assert spkrec.load_system(S).load_db(D).names == ["FAEM0", "MARC0"]


def test_make_data_dir(env, tmp_path):
    dr1 = os.path.join(ROOT, "data", "timit-sample", "TIMIT", "TRAIN", "DR1")
    assert cli("make-data-dir", "-q", "--from-dir", dr1, tmp_path / "d") == 0
    assert cli("validate-data-dir", "-q", tmp_path / "d") == 0
    lines = open(tmp_path / "d" / "utt2spk").read().splitlines()
    assert lines == sorted(lines, key=lambda s: s.encode()) and len(lines) == 20
    assert {line.split()[1] for line in lines} == {"FVMH0", "MCPM0"}
    assert all(line.split()[0].startswith(line.split()[1] + "-") for line in lines)
    spk2utt = open(tmp_path / "d" / "spk2utt").read().splitlines()
    assert [s.split()[0] for s in spk2utt] == ["FVMH0", "MCPM0"]
    (tmp_path / "audio").mkdir()
    shutil.copy(env["test"]["FAEM0"][0], tmp_path / "audio" / "a.wav")
    (tmp_path / "l.csv").write_text("alice,audio/a.wav\nbob," + env["test"]["MARC0"][0] + "\n")
    assert cli("make-data-dir", "-q", "--from-list", tmp_path / "l.csv", tmp_path / "e") == 0
    wav = read_table(tmp_path / "e" / "wav.scp")
    assert wav["alice-a"].strip() == str(tmp_path / "audio" / "a.wav")
    assert cli("validate-data-dir", "-q", tmp_path / "e") == 0


# --------------------------------------------------------------------------------- bad input: one line each
def test_bad_input_one_line(env, tmp_path, capsys):
    S, system = env["gmm"], env["system"]
    D = tmp_path / "db.npz"
    enroll = env["enroll"]["FAEM0"]
    assert cli("enroll", "-q", S, D, "--speaker", "FAEM0", *enroll) == 0
    capsys.readouterr()
    test = env["test"]["FAEM0"][0]
    assert "speaker 'zoe' is not enrolled" in one_error_line(capsys, "verify", S, D, "zoe", test)
    sf.write(tmp_path / "empty.wav", np.zeros(0, np.int16), 16000)
    assert "empty" in one_error_line(capsys, "verify", S, D, "FAEM0", tmp_path / "empty.wav")
    sf.write(tmp_path / "silent.wav", np.zeros(32000, np.int16), 16000)
    assert "no voiced frames" in one_error_line(capsys, "identify-files", S, D, tmp_path / "silent.wav")
    sf.write(tmp_path / "short.wav", np.random.default_rng(0).integers(-3000, 3000, 100).astype(np.int16), 16000)
    assert "shorter than one" in one_error_line(capsys, "verify", S, D, "FAEM0", tmp_path / "short.wav")
    (tmp_path / "junk.wav").write_bytes(b"not audio at all")
    assert "cannot decode" in one_error_line(capsys, "verify", S, D, "FAEM0", tmp_path / "junk.wav")
    assert "no audio files" in one_error_line(capsys, "enroll", S, D, "--speaker", "bob")
    with pytest.raises(SpkrecError, match="no audio files"):
        system.enroll({"bob": []})
    for version, word in ((0, "older"), (2, "newer")):
        old = tmp_path / f"v{version}"
        shutil.copytree(S, old)
        cfg = json.load(open(old / "system.json"))
        cfg["format_version"] = version
        json.dump(cfg, open(old / "system.json", "w"))
        assert word in one_error_line(capsys, "verify", old, D, "FAEM0", test)
    other = tmp_path / "other"   # another system: another MAP relevance factor enrols differently
    assert cli("export-system", "-q", "--kind", "gmm_ubm", "--ubm", env["root"] / "ubm", "--feat-config", MFCC,
               "--vad-config", VAD, "--seed=0", "--relevance-factor", 10, "--out", other) == 0
    assert "made with another system" in one_error_line(capsys, "verify", other, D, "FAEM0", test)
    assert "made with another system" in one_error_line(capsys, "enroll", other, D, "--speaker", "x", test)
    changed = tmp_path / "changed"
    shutil.copytree(S, changed)
    from spkrec.gmm import DiagGMM
    ubm = DiagGMM.load(changed / "ubm.npz")
    DiagGMM.from_params(ubm.weights_, ubm.means_ + 0.01, ubm.variances_).save(changed / "ubm.npz")
    assert "fingerprint" in one_error_line(capsys, "verify", changed, D, "FAEM0", test)
    assert "not a system bundle" in one_error_line(capsys, "verify", tmp_path, D, "FAEM0", test)
    assert "--vad-config" in one_error_line(capsys, "export-system", "--kind", "gmm_ubm", "--ubm",
                                            env["root"] / "ubm", "--feat-config", MFCC, "--out", tmp_path / "x")
    assert "dimensions" in one_error_line(capsys, "export-system", "--kind", "gmm_ubm", "--ubm", env["root"] / "ubm",
                                          "--feat-config", MFCC, "--no-vad", "--num-ceps=13", "--out", tmp_path / "x")


# --------------------------------------------------------------------------------- S-norm, GSV-SVM, fusion bundles
def _cohort_trials(path, left, right):
    with open(path, "w") as f:
        f.writelines(f"{a} {b}\n" for a in left for b in right)


def test_snorm_bundle_equals_score_norm_of_recipe_verbs(env, timit_dirs, tmp_path, capsys):
    """A GMM-UBM bundle with an S-norm cohort (so762-mini speakers) scores as enroll-gmm + score-gmm of the
    models against the cohort's utterances and of the cohort's models against the tests + score-norm."""
    so, d, r = env["so"], timit_dirs["root"], tmp_path
    ubm = env["gmm"] / "ubm.npz"
    assert cli("enroll-gmm", "-q", ubm, d / "enroll", r / "models.npz") == 0
    assert cli("enroll-gmm", "-q", ubm, so, r / "cohort.npz") == 0
    cohort_spks = sorted(read_table(so / "spk2utt"))
    cohort_utts = sorted(read_table(so / "utt2spk"))
    _cohort_trials(r / "ec.trials", timit_dirs["spks"], cohort_utts)
    _cohort_trials(r / "ct.trials", cohort_spks, timit_dirs["tests"])
    assert cli("score-gmm", "-q", ubm, r / "models.npz", d / "test", d / "trials", r / "raw") == 0
    assert cli("score-gmm", "-q", ubm, r / "models.npz", so, r / "ec.trials", r / "ec") == 0
    assert cli("score-gmm", "-q", ubm, r / "cohort.npz", d / "test", r / "ct.trials", r / "ct") == 0
    for method in ("s", "as"):
        assert cli("score-norm", "-q", "--method", method, "--top-n", 50, r / "raw", r / "ec", r / "ct",
                   r / f"{method}.scores") == 0
        out = r / f"gmm_ubm_{method}norm"
        assert cli("export-system", "-q", "--kind", "gmm_ubm", "--ubm", env["root"] / "ubm", "--feat-config", MFCC,
                   "--vad-config", VAD, "--seed=0", "--snorm-cohort", so, "--snorm-method", method,
                   "--snorm-top-n", 50, "--out", out) == 0
        system = spkrec.load_system(out)
        assert system.config["score_norm"]["cohort_speakers"] == len(cohort_spks)
        assert sorted(os.listdir(out)) == ["cohort_models.npz", "cohort_tests.npz", "system.json", "ubm.npz"]
        db = system.enroll(env["enroll"])
        _check_scores(system, db, timit_dirs, _read_scores(r / f"{method}.scores"), 2e-5)
        # the raw system's database is refused: the normalised one enrols with the cohort
        with pytest.raises(SpkrecError, match="another system"):
            system.check_db(env["db"])
    db.save(r / "db.npz")
    back = system.load_db(r / "db.npz")
    t = timit_dirs["tests"][0]
    np.testing.assert_allclose(system.scores(back, timit_dirs["wav"][t]), system.scores(db, timit_dirs["wav"][t]))


def test_gsv_svm_bundle_equals_train_svm_score_svm(env, timit_dirs, tmp_path):
    so, d, r = env["so"], timit_dirs["root"], tmp_path
    ubm = env["gmm"] / "ubm.npz"
    for name, data in (("bg", so), ("enroll", d / "enroll"), ("test", d / "test")):
        assert cli("extract-supervectors", "-q", ubm, data, r / name) == 0
    assert cli("train-svm", "-q", r / "enroll" / "supervector.scp", d / "enroll" / "utt2spk",
               r / "bg" / "supervector.scp", r / "svm.npz") == 0
    assert cli("score-svm", "-q", r / "svm.npz", r / "test" / "supervector.scp", d / "trials", r / "svm.scores") == 0
    out = r / "gsv_svm"
    assert cli("export-system", "-q", "--kind", "gsv_svm", "--ubm", env["root"] / "ubm", "--background-supervectors",
               r / "bg" / "supervector.scp", "--feat-config", MFCC, "--vad-config", VAD, "--seed=0", "--out", out) == 0
    system = spkrec.load_system(out)
    assert sorted(os.listdir(out)) == ["background.npz", "system.json", "ubm.npz"]
    db = system.enroll(env["enroll"])
    _check_scores(system, db, timit_dirs, _read_scores(r / "svm.scores"), 1e-4)


def test_fusion_bundle_fuses_its_components(env, timit_dirs, tmp_path, capsys):
    """fused score = w . (component scores) + b with the weights of `spkrec fuse`; one database enrols all."""
    from spkrec.backend.calibration import LinearFusion
    r = tmp_path
    other = r / "gmm_ubm_r8"
    assert cli("export-system", "-q", "--kind", "gmm_ubm", "--ubm", env["root"] / "ubm", "--feat-config", MFCC,
               "--vad-config", VAD, "--seed=0", "--relevance-factor", 8, "--top-c", 0, "--out", other) == 0
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.3
    S = rng.normal(size=(400, 2)) + labels[:, None] * [2.0, 1.0]
    LinearFusion(target_prior=0.01).fit(S, labels, ["gmm_ubm", "gmm_ubm_r8"]).save(r / "fusion.npz")
    fused = LinearFusion.load(r / "fusion.npz")
    out = r / "fused"
    assert cli("export-system", "-q", "--kind", "fusion", "--component", env["gmm"], "--component", other,
               "--fusion", r / "fusion.npz", "--out", out) == 0
    system = spkrec.load_system(out)
    assert system.calibrated and system.threshold == pytest.approx(np.log(99))
    assert [c["name"] for c in system.config["components"]] == ["gmm_ubm", "gmm_ubm_r8"]
    parts = [env["system"], spkrec.load_system(other)]
    spks = ["FAEM0", "MARC0", "FALK0"]
    db = system.enroll({s: env["enroll"][s] for s in spks})
    dbs = [p.enroll({s: env["enroll"][s] for s in spks}) for p in parts]
    for f in env["test"]["MARC0"] + env["test"]["FALK0"][:1]:
        want = np.stack([p.scores(b, f) for p, b in zip(parts, dbs)], 1) @ fused.weights_ + fused.offset_
        np.testing.assert_allclose(system.scores(db, f), want, rtol=1e-10, atol=1e-10)
        assert system.verify(db, "MARC0", f).llr == pytest.approx(want[1])
    db.save(r / "fdb")
    assert system.load_db(r / "fdb").names == spks
    capsys.readouterr()
    assert "two or more" in one_error_line(capsys, "export-system", "--kind", "fusion", "--component", env["gmm"],
                                           "--fusion", r / "fusion.npz", "--out", r / "x")
    plp = r / "plp"    # another front end cannot join the fusion
    assert cli("export-system", "-q", "--kind", "gmm_ubm", "--ubm", env["root"] / "ubm", "--feat-config", MFCC,
               "--vad-config", VAD, "--seed=1", "--out", plp) == 0
    assert "front end" in one_error_line(capsys, "export-system", "--kind", "fusion", "--component", env["gmm"],
                                         "--component", plp, "--fusion", r / "fusion.npz", "--out", r / "x")
    (r / "nofeats").mkdir()
    for name in ("wav.scp", "utt2spk", "spk2utt"):
        shutil.copy(env["timit"] / name, r / "nofeats" / name)
    assert "has no features" in one_error_line(capsys, "export-system", "--kind", "gmm_ubm", "--ubm", env["root"] / "ubm",
                                               "--feat-config", MFCC, "--vad-config", VAD, "--seed=0", "--snorm-cohort",
                                               r / "nofeats", "--out", r / "x")
