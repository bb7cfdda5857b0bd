"""The text-dependent HMM system bundle (kind "hmm"): `spkrec export-system --kind hmm`, `enroll --phrase`,
`verify` on audio files, against `enroll-hmm` + `score-hmm` on data dirs of the same files (compute-feats
with the recipe's 8 kHz MFCC options). The audio is synthetic: a "phrase" is a sequence of voiced tone
segments, a "speaker" a fundamental frequency and a spectral tilt."""
import os

import numpy as np
import pytest
import soundfile as sf

import spkrec
from spkrec.cli.main import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MFCC = os.path.join(ROOT, "recipes", "fsdd", "conf", "mfcc.conf")
RATE = 8000
PHRASES = {"up": (300, 900, 1800), "down": (1800, 900, 300)}          # formant-like centre per segment (Hz)
SPEAKERS = {"bg1": (100, 0.8), "bg2": (130, 0.5), "bg3": (160, 0.3), "ann": (115, 0.65), "bob": (145, 0.4)}


def cli(*args):
    return main([str(a) for a in args])


def utterance(spk, phrase, rep):
    f0, tilt = SPEAKERS[spk]
    rng = np.random.default_rng(abs(hash((spk, phrase, rep))) % 2 ** 32)
    parts = []
    for centre in PHRASES[phrase]:
        t = np.arange(int(RATE * rng.uniform(0.10, 0.16))) / RATE
        f = f0 * rng.uniform(0.97, 1.03)
        x = sum(tilt ** k * np.exp(-((k * f - centre) / 400.0) ** 2) * np.sin(2 * np.pi * k * f * t)
                for k in range(1, int(3800 / f)))
        parts.append(x)
    x = np.concatenate(parts)
    return (0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(len(x))).astype(np.float32)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("hmmbundle")
    wav = {}
    for spk in SPEAKERS:
        for phrase in PHRASES:
            for rep in range(6):
                utt = f"{spk}_{phrase}_{rep}"
                wav[utt] = root / "wav" / f"{utt}.wav"
                os.makedirs(wav[utt].parent, exist_ok=True)
                sf.write(wav[utt], utterance(spk, phrase, rep), RATE)
    sets = {"train": [u for u in wav if u.startswith("bg")],
            "enroll": [u for u in wav if not u.startswith("bg") and int(u[-1]) < 3],
            "test": [u for u in wav if not u.startswith("bg") and int(u[-1]) >= 3]}
    for name, utts in sets.items():
        d = root / name
        os.makedirs(d)
        for table, value in (("wav.scp", lambda u: wav[u]), ("utt2spk", lambda u: u.split("_")[0]),
                             ("text", lambda u: u.split("_")[1])):
            (d / table).write_text("".join(f"{u} {value(u)}\n" for u in sorted(utts)))
        assert cli("compute-feats", "-q", "--config", MFCC, "--seed=0", d, root / f"mfcc_{name}") == 0
    assert cli("train-hmm", "-q", "--num-states", 3, "--num-mix", 2, "--cmvn", "none", root / "train",
               root / "hmm") == 0
    bundle = root / "bundle"
    assert cli("export-system", "-q", "--kind", "hmm", "--hmm", root / "hmm", "--relevance-factor", 2, "--adapt",
               "mwv", "--feat-config", MFCC, "--no-vad", "--seed=0", "--out", bundle) == 0
    return {"root": root, "wav": wav, "sets": sets, "bundle": bundle}


def test_bundle_scores_equal_enroll_hmm_score_hmm(env):
    root, wav = env["root"], env["wav"]
    assert cli("enroll-hmm", "-q", "--relevance-factor", 2, "--adapt", "mwv", root / "hmm", root / "enroll",
               root / "models.npz") == 0
    models = [f"{s}-{p}" for s in ("ann", "bob") for p in PHRASES]
    tests = sorted(env["sets"]["test"])
    (root / "trials").write_text("".join(f"{m} {t}\n" for m in models for t in tests))
    assert cli("score-hmm", "-q", root / "hmm", root / "models.npz", root / "test", root / "trials",
               root / "scores") == 0
    ref = {tuple(line.split()[:2]): float(line.split()[2]) for line in open(root / "scores")}
    system = spkrec.load_system(env["bundle"])
    assert system.kind == "hmm"
    db = system.new_db()
    for phrase in PHRASES:
        enroll = {f"{s}-{phrase}": [wav[f"{s}_{phrase}_{r}"] for r in range(3)] for s in ("ann", "bob")}
        system.enroll(enroll, db, phrase=phrase)
    for t in tests:
        got = dict(zip(db.names, system.scores(db, wav[t])))
        np.testing.assert_allclose([got[m] for m in models], [ref[m, t] for m in models], rtol=1e-5, atol=1e-5)
    # the scores separate: the enrolled speaker saying the enrolled phrase beats the other three models
    for t in tests:
        spk, phrase = t.split("_")[:2]
        scores = dict(zip(db.names, system.scores(db, wav[t])))
        assert max(scores, key=scores.get) == f"{spk}-{phrase}"


def test_cli_enroll_phrase_verify_and_errors(env, tmp_path, capsys):
    wav, bundle, db = env["wav"], env["bundle"], tmp_path / "db.npz"
    assert cli("enroll", bundle, db, "--phrase", "up", "--speaker", "ann", *[wav[f"ann_up_{r}"] for r in range(3)]) == 0
    capsys.readouterr()
    assert cli("verify", bundle, db, "ann", wav["ann_up_4"], wav["bob_up_4"], wav["ann_down_4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    score = [float(line.split()[3]) for line in lines]
    assert score[0] > score[1] and score[0] > score[2]           # other speaker; same speaker, wrong phrase
    # several phrases and no --phrase; an unknown phrase; fewer frames than states: one line each
    for args, words in (((), "--phrase"), (("--phrase", "left"), "'left' has no HMM"),):
        assert cli("enroll", bundle, tmp_path / "x.npz", *args, "--speaker", "ann", wav["ann_up_0"]) == 1
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "x.npz").exists()
    # the shortest recording the front end takes has 3 frames (= states here): the engine gets 2 frames
    system = spkrec.load_system(bundle)
    with pytest.raises(spkrec.SpkrecError, match="has 2 frames, fewer than the HMM's 3 states") as err:
        system.engine.enroll([np.zeros((2, system.engine.dim))], phrase="up")
    assert "\n" not in str(err.value)
    # a text-independent system refuses --phrase
    with pytest.raises(spkrec.SpkrecError, match="text-independent"):
        _ti(system).speaker_arrays([np.zeros((5, 39))], phrase="up")


def _ti(system):
    """The bundle with its engine made to look text-independent."""
    class TextIndependent:
        def enroll(self, frames):
            return {}
    system.engine = TextIndependent()
    system.kind = "gmm_ubm"
    return system
