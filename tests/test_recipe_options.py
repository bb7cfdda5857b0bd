"""The recipes' options: `run.sh --help` describes every option (from the `name=value  # comment` lines of
run.sh and cmd.sh), relative paths given on the command line are taken from the directory the user runs
from (every recipe, every path option), --verbose/--quiet take true/false and --quiet silences the stages."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
RECIPES = ["mini", "so762", "timit"]


def _env():
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(recipe, *args, cwd):
    return subprocess.run(["bash", os.path.join(ROOT, "recipes", recipe, "run.sh"), *map(str, args)],
                          capture_output=True, text=True, env=_env(), cwd=cwd, timeout=600)


def _declared_options(recipe):
    """{name: description} read independently of parse_options.sh: the variables set at the top of run.sh
    (before it sources parse_options.sh) and in cmd.sh, with their trailing comments."""
    options = {}
    for name in ("run.sh", "cmd.sh"):
        last = None
        for line in open(os.path.join(ROOT, "recipes", recipe, name)):
            if "utils/parse_options.sh" in line:
                break
            m = re.match(r"([a-z_][a-z0-9_]*)=(.*)$", line)
            if m and not m.group(2).startswith("$("):  # here=$(pwd) is not an option
                comment = m.group(2).split("#", 1)[1].strip() if "#" in m.group(2) else ""
                options[m.group(1)] = comment
                last = m.group(1)
            elif last and re.match(r"\s+#", line):
                options[last] += " " + line.strip().lstrip("#").strip()
            else:
                last = None
    return options


@pytest.mark.parametrize("recipe", RECIPES)
def test_help_describes_every_option(recipe, tmp_path):
    options = _declared_options(recipe)
    assert {"stage", "stop_stage", "exp", "data", "nj", "verbose", "quiet"} <= set(options)
    for name, comment in options.items():
        assert len(comment) > 10, f"recipes/{recipe}: option {name} has no description"
    r = _run(recipe, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = r.stdout
    assert "Stages:" in text and "Options" in text
    listed = re.findall(r"^  --([a-z0-9-]+) (.*)$", text, re.M)
    assert [n.replace("-", "_") for n, _ in listed] == list(options)  # every option, in the file's order
    for name, comment in options.items():  # each with its description (wrapped) after it
        block = text.split(f"\n  --{name.replace('_', '-')} ", 1)[1].split("\n  --", 1)[0]
        assert " ".join(block.split("\n", 1)[1].split()) == " ".join(comment.split()), name
    assert re.search(r"^  --stop-stage 100$", text, re.M)  # the default value
    assert not (tmp_path / "exp").exists()  # --help makes nothing


def test_help_shows_values_given_before_it(tmp_path):
    r = _run("mini", "--num-gauss", "64", "--help", cwd=tmp_path)
    assert re.search(r"^  --num-gauss 64$", r.stdout, re.M)


def test_relative_paths_are_taken_from_the_callers_directory(tmp_path):
    """mini's --corpus/--data/--exp and so762's --train/--eval/--data/--exp, all relative to the cwd."""
    corpus = os.path.relpath(os.path.join(ROOT, "data", "so762-mini"), tmp_path)
    r = _run("mini", "--corpus", corpus, "--data", "d", "--exp", "e", "--stop-stage", 0, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "d" / "all" / "spk2utt").is_file()
    log = (tmp_path / "e" / "log" / "prepare.log").read_text()
    assert log.startswith(f"# spkrec prepare-data so762 {tmp_path}/{corpus} {tmp_path}/d/all\n")
    assert "# Ended (code 0)" in log
    assert not os.path.exists(os.path.join(ROOT, "recipes", "mini", "d"))
    r = _run("so762", "--train", corpus, "--eval", corpus, "--data", "d2", "--exp", "e2", "--stop-stage", 0,
             "--quiet", "true", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # --quiet: no stage lines, no summary lines
    assert (tmp_path / "d2" / "train0" / "spk2utt").is_file() and (tmp_path / "d2" / "eval_all" / "spk2utt").is_file()
    assert (tmp_path / "e2" / "log" / "prepare_eval.log").is_file()


def test_verbose_and_quiet_take_true_or_false(tmp_path):
    r = _run("timit", "--verbose", "yes", "--exp", "e", "--data", "d", cwd=tmp_path)
    assert r.returncode != 0 and "--verbose and --quiet take true or false" in r.stderr


def test_quiet_still_shows_why_a_recipe_stopped(tmp_path):
    r = _run("timit", "--stage", 3, "--quiet", "true", "--exp", "e", "--data", "d", cwd=tmp_path)
    assert r.returncode != 0 and r.stderr.strip().endswith("run stage 2 first"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_cnn_stage_without_torch_lets_the_recipe_go_on(tmp_path):
    """Stage 12 without PyTorch is skipped with one line and returns success under `set -e` (the main job,
    installed without the [rnn] extra, runs on to stage 20)."""
    script = f"""
set -euo pipefail
log() {{ echo "$*" >&2; }}
run_stage() {{ return 0; }}
have_torch() {{ return 1; }}
cnn_systems() {{ have_torch || {{ log "  CNN systems skipped"; return 0; }}; }}
. {ROOT}/recipes/utils/stage_cnn.sh
cnn_systems() {{ log "  CNN systems skipped"; return 0; }}
cnn_arch=resnet18 data={tmp_path} exp={tmp_path} lda_dim=20 cnn_epochs=1
run_cnn_stage
echo reached stage 20
"""
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and "reached stage 20" in proc.stdout, proc.stderr
