"""End-to-end: recipes/fsdd (text-dependent verification with HMMs on the Free Spoken Digit Dataset).

Runs only where the corpus is (``$SPKREC_FSDD``, default ``../shared/corpora/fsdd`` beside the
repository); skipped elsewhere.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
CORPUS = os.environ.get("SPKREC_FSDD", os.path.join(ROOT, "..", "shared", "corpora", "fsdd"))
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not os.path.isfile(os.path.join(CORPUS, "text")),
                                 reason=f"FSDD corpus not found at {CORPUS} (set SPKREC_FSDD)")]


def _kind_table(results_md):
    """{system: {kind: EER}} from the per-kind table of results.md."""
    return _table(results_md.split("per non-target kind")[1])


def _table(text):
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("|")]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    return {cells[0]: dict(zip(header[1:], map(float, cells[1:])))
            for cells in ([c.strip() for c in r.strip("|").split("|")] for r in rows[2:])}


def test_fsdd_recipe_end_to_end(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = ["bash", os.path.join(ROOT, "recipes", "fsdd", "run.sh"), "--corpus", os.path.abspath(CORPUS),
           "--exp", str(tmp_path / "exp"), "--data", str(tmp_path / "data")]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    results = (tmp_path / "exp" / "results.md").read_text()
    assert (tmp_path / "exp" / "det.png").stat().st_size > 0
    assert "54000 trials" in results
    kinds = _kind_table(results)
    assert set(kinds) == {"hmm", "hmm_claimed", "hmm_phrase", "gmm_ubm", "gmm_ubm_mwv"}
    # the HMM against the best SI digit model rejects wrong-digit trials of the target speaker far better
    # than against the claimed digit's model alone
    assert kinds["hmm"]["target_wrong"] < 0.5 * kinds["hmm_claimed"]["target_wrong"]
    assert all(0 <= e < 50 for row in kinds.values() for e in row.values())
    # the targets of issue 17 that the recipe's defaults meet (docs/text_dependent.md): below the GMM-UBM on
    # impostor / correct digit and on target / wrong digit
    assert kinds["hmm"]["impostor_correct"] < kinds["gmm_ubm"]["impostor_correct"]
    assert kinds["hmm"]["target_wrong"] < kinds["gmm_ubm"]["target_wrong"]
    # hmm_fused: trained on fold0's trials, applied to (and evaluated on) the other folds only
    exp, data = tmp_path / "exp", tmp_path / "data"
    assert not (exp / "fold0" / "scores" / "hmm_fused.txt").exists()
    fold0 = {line.split()[0] for line in (data / "folds" / "fold0" / "test" / "trials").read_text().splitlines()}
    fused = [line.split() for line in (exp / "scores_eval" / "hmm_fused.txt").read_text().splitlines()]
    assert fused and not fold0 & {f[0] for f in fused}
    evals = _table(results.split("per non-target kind")[2])
    assert set(evals) == set(kinds) | {"hmm_fused"}
    assert all(0 <= e < 50 for row in evals.values() for e in row.values())
    # the HMM system bundle, and the fused one (hmm and hmm_phrase bundles, fold0's fusion): enrol a digit of
    # a held-out speaker, verify the same digit and another one
    wav = os.path.join(os.path.abspath(CORPUS), "WAVE", "george")
    for name in ("hmm", "hmm_fused"):
        bundle, db = exp / "systems" / name, tmp_path / f"db_{name}.npz"
        run = [sys.executable, "-m", "spkrec.cli.main"]
        enrol = subprocess.run(run + ["enroll", str(bundle), str(db), "--phrase", "seven", "--speaker", "george",
                                      *[os.path.join(wav, f"george_7_{i:02d}.flac") for i in range(5)]],
                               capture_output=True, text=True, env=env)
        assert enrol.returncode == 0, enrol.stderr[-2000:]
        out = subprocess.run(run + ["verify", str(bundle), str(db), "george", os.path.join(wav, "george_7_30.flac"),
                                    os.path.join(wav, "george_2_30.flac")], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-2000:]
        same, other = (float(line.split()[3]) for line in out.stdout.splitlines())
        assert same > other, name
    # a second run finds every stage done
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and again.stderr.count("skipping") >= 7
