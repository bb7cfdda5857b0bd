"""recipes/utils/stages.sh records each stage's wall time: one terminal line per stage and a row per
stage and run in EXP/log/stage_times.tsv; skipped stages get none."""
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DRIVER = """set -euo pipefail
stages="0 1 2"; stage=${{2:-0}}; stop_stage=100; exp=$1; verbose=false; quiet=false
. {root}/recipes/utils/stages.sh
if run_stage 0 "first stage" "$exp/zero"; then sleep 0.3; touch "$exp/zero"; fi
if run_stage 1 "second stage"; then sleep 0.1; fi
if run_stage 2 "third stage" "$exp/two"; then touch "$exp/two"; fi
finish_stages
"""


def _run(driver, exp, *args):
    r = subprocess.run(["bash", str(driver), str(exp), *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stderr


def test_stage_wall_times_are_printed_and_recorded(tmp_path):
    driver = tmp_path / "driver.sh"
    driver.write_text(DRIVER.format(root=ROOT))
    exp = tmp_path / "exp"
    err = _run(driver, exp)
    done = [line.split(" ", 1)[1] for line in err.splitlines() if "finished in" in line]
    assert [d.split(":")[0] for d in done] == ["stage 0", "stage 1", "stage 2"]
    rows = [line.split("\t") for line in (exp / "log" / "stage_times.tsv").read_text().splitlines()]
    assert rows[0] == ["run", "stage", "seconds", "description"]
    assert [r[1] for r in rows[1:]] == ["0", "1", "2"] and [r[3] for r in rows[1:]] == ["first stage", "second stage",
                                                                                         "third stage"]
    secs = [float(r[2]) for r in rows[1:]]
    assert 0.3 <= secs[0] < 5 and 0.1 <= secs[1] < 5 and secs[2] < secs[0]
    assert len({r[0] for r in rows[1:]}) == 1  # one run
    assert f"finished in {rows[1][2]} s" in done[0]
    # a second run from stage 1: stage 0 is not run, stage 1 (no outputs) runs and so does stage 2 after
    # it; their rows are appended under the new run
    err = _run(driver, exp, "1")
    rows2 = [line.split("\t") for line in (exp / "log" / "stage_times.tsv").read_text().splitlines()]
    assert rows2[:4] == rows and [r[1] for r in rows2[4:]] == ["1", "2"]
    assert sum("finished in" in line for line in err.splitlines()) == 2
