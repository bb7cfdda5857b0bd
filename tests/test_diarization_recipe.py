"""recipes/so762_diarization/run.sh end to end on data/so762-mini split into two halves of speakers
(models on the first 30, simulated conversations of the other 30)."""
import os
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINI = os.path.join(ROOT, "data", "so762-mini")


def split_corpus(out):
    """Two so762-layout corpora (links to the speaker folders) from the sorted speakers of so762-mini."""
    spk = sorted(d[len("SPEAKER"):] for d in os.listdir(os.path.join(MINI, "WAVE")))
    halves = {"a": set(spk[: len(spk) // 2]), "b": set(spk[len(spk) // 2:])}
    for name, keep in halves.items():
        os.makedirs(os.path.join(out, name, "WAVE"))
        for s in keep:
            os.symlink(os.path.join(MINI, "WAVE", f"SPEAKER{s}"), os.path.join(out, name, "WAVE", f"SPEAKER{s}"))
        for table, col in (("spk2gender", 0), ("spk2age", 0), ("utt2spk", 1)):
            with open(os.path.join(MINI, table)) as f, open(os.path.join(out, name, table), "w") as g:
                g.writelines(line for line in f if line.split()[col] in keep)
    return os.path.join(out, "a"), os.path.join(out, "b")


def test_diarization_recipe_on_so762_mini(tmp_path):
    train, evl = split_corpus(tmp_path / "corpora")
    recipe = tmp_path / "recipe"
    shutil.copytree(os.path.join(ROOT, "recipes", "so762_diarization"), recipe, symlinks=True)
    os.remove(recipe / "utils")
    os.symlink(os.path.join(ROOT, "recipes", "utils"), recipe / "utils")
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    small = ["--nj", "1", "--num-dev", "3", "--num-dev2", "2", "--num-test", "3", "--num-test2", "2",
             "--thresholds", "-8 -5 -2", "--merge-thresholds", "none -15"]
    p = subprocess.run(["bash", str(recipe / "run.sh"), "--train", train, "--eval", evl, *small],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr[-3000:]
    results = (recipe / "exp" / "results.md").read_text()
    print(results)
    rows = {tuple(c.strip().split(" (")[0] for c in line.split("|")[1:3]): line.split("|")
            for line in results.splitlines() if line.startswith("| conv_")}
    assert {(s, v) for s in ("conv_test", "conv_test2") for v in ("tuned", "tuned_reseg", "oracle")} <= set(rows)
    assert {("conv_testfx", "tuned"), ("conv_testfx2", "tuned")} <= set(rows)
    assert float(rows[("conv_test", "oracle")][3]) < 40.0      # DER %, collar 0.25 s, 2-4 speakers
    assert float(rows[("conv_test", "oracle")][-2]) >= float(rows[("conv_test", "oracle")][3])  # collar 0: more
    assert (recipe / "exp" / "systems" / "diarization" / "diarization.json").is_file()
    import json
    tuned = json.loads((recipe / "exp" / "systems" / "diarization" / "diarization.json").read_text())
    assert tuned["threshold"] in (-8, -5, -2) and tuned["merge_threshold"] in (None, -15)
    # the bundle diarizes any file with its tuned threshold
    wav = sorted((recipe / "data" / "conv_test" / "wav").glob("*.wav"))[0]
    q = subprocess.run(["spkrec", "diarize", str(recipe / "exp" / "systems" / "diarization"), str(wav), "--rttm",
                        str(tmp_path / "one.rttm")], capture_output=True, text=True, env=env)
    assert q.returncode == 0, q.stderr
    assert (tmp_path / "one.rttm").read_text().startswith("SPEAKER test_001 1 ")
    # a rerun skips every stage
    p = subprocess.run(["bash", str(recipe / "run.sh"), "--train", train, "--eval", evl, *small],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0 and "skipping" in p.stderr
