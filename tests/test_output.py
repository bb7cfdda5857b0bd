"""What the terminal and the logs get: one summary line per command (no per-chunk lines) when stderr is not
a terminal, progress bars when it is, every message in $SPKREC_LOG_FILE; the recipes' run() logs (command
line, Accounting and Ended lines, one file per command) and a failing command's log tail; renamed CLI
options keep their old spelling as a hidden alias."""
import io
import logging
import os
import re
import subprocess
import sys
import time

import numpy as np
import pytest

from spkrec import parallel
from spkrec.cli.common import CommandLogging
from spkrec.cli.main import RENAMED_OPTIONS, VERBS, build_parser

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("SPKREC_LOG_FILE", None)
    env.pop("SPKREC_VERBOSITY", None)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(extra)
    return env


def _spkrec(*args, **env):
    return subprocess.run([sys.executable, "-m", "spkrec.cli.main", *map(str, args)], capture_output=True,
                          text=True, env=_env(**env), timeout=300)


@pytest.fixture(scope="module")
def feats_dir(tmp_path_factory):
    """A data dir of 12 utterances of random 13-dim features (feats.scp, utt2spk, spk2utt)."""
    import kaldiio
    d = tmp_path_factory.mktemp("feats")
    rng = np.random.default_rng(0)
    utts = [f"s{i // 3}-u{i:02d}" for i in range(12)]  # sorted ids
    with kaldiio.WriteHelper(f"ark,scp:{d}/feats.ark,{d}/feats.scp") as w:
        for u in utts:
            w(u, rng.standard_normal((200, 13)).astype(np.float32))
    (d / "wav.scp").write_text("".join(f"{u} /no/audio/{u}.wav\n" for u in utts))  # --no-check-audio
    (d / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in utts))
    spk = sorted({u.split("-")[0] for u in utts})
    (d / "spk2utt").write_text("".join(f"{s} {' '.join(u for u in utts if u.startswith(s + '-'))}\n" for s in spk))
    return d


UBM = ("train-ubm", "--num-gauss", 4, "--num-iters", 2, "--deltas-order", 0, "--cmvn", "none")


def test_non_terminal_run_prints_one_summary_line(feats_dir, tmp_path):
    r = _spkrec(*UBM, feats_dir, tmp_path / "ubm")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr  # today's code prints 8 EM lines and 24 chunk lines here
    assert lines[0].startswith("spkrec train-ubm: wrote ") and "final.ubm.npz" in lines[0]
    assert "chunks" not in r.stderr and "\r" not in r.stderr  # no per-chunk lines, no progress bar


def test_quiet_verbose_and_the_log_file(feats_dir, tmp_path):
    quiet = _spkrec(*UBM, "-q", feats_dir, tmp_path / "q")
    assert quiet.returncode == 0 and quiet.stderr == ""
    quiet_env = _spkrec(*UBM, feats_dir, tmp_path / "qe", SPKREC_VERBOSITY="quiet")
    assert quiet_env.returncode == 0 and quiet_env.stderr == ""
    verbose = _spkrec(*UBM, "-v", feats_dir, tmp_path / "v")
    assert re.search(r"EM \(4 Gaussians\): 1/\d+ chunks", verbose.stderr)
    assert verbose.stderr.count("avg log-lik") >= 4
    log = tmp_path / "train.log"
    r = _spkrec(*UBM, feats_dir, tmp_path / "f", SPKREC_LOG_FILE=log)
    assert r.returncode == 0 and len(r.stderr.splitlines()) == 1
    text = log.read_text()
    assert re.search(r"^\d\d:\d\d:\d\d spkrec train-ubm DEBUG: EM \(2 Gaussians\): 1/\d+ chunks", text, re.M)
    assert text.count("INFO: EM") >= 4 and "INFO: wrote" in text
    # a failing command: the error line on the terminal and in the log, no summary line
    bad = _spkrec(*UBM, tmp_path / "no-such-dir", tmp_path / "g", SPKREC_LOG_FILE=tmp_path / "bad.log")
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [l for l in bad.stderr.splitlines() if "error:" in l] != []
    assert "ERROR: spkrec train-ubm: error:" in (tmp_path / "bad.log").read_text()


def test_progress_bar_of_a_command_on_a_terminal(feats_dir, tmp_path):
    """``spkrec train-ubm`` with stderr on a pseudo-terminal: a bar per EM pass (with the ETA), erased when
    the pass ends, and the one summary line; no per-chunk lines."""
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "spkrec.cli.main", *map(str, UBM), str(feats_dir),
                             str(tmp_path / "ubm")], stdin=slave, stdout=slave, stderr=slave,
                            env=_env(SPKREC_PROGRESS_DELAY="0"))
    os.close(slave)
    out = b""
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the command ended (EIO)
            break
        if not data:
            break
        out += data
    assert proc.wait(timeout=300) == 0
    os.close(master)
    text = out.decode("utf-8", "replace")
    assert re.search(r"EM \(4 Gaussians\):\s+\d+%\|.*\| \d+/\d+ \[\d\d:\d\d<(\d\d:\d\d|\?)", text), text[-2000:]
    lines = [l for l in re.split(r"[\r\n]+", text) if l.strip() and "%|" not in l]
    assert len(lines) == 1 and lines[0].startswith("spkrec train-ubm: wrote "), lines
    assert "chunks (" not in text


def _slow_chunk(items, pause):
    time.sleep(pause)
    return [i * 2 for i in items]


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_only(monkeypatch, caplog):
    monkeypatch.setattr(parallel, "PROGRESS_DELAY", 0.0)
    term = _Terminal()
    with CommandLogging("demo", stream=term):
        assert parallel.PROGRESS_BAR is True
        with caplog.at_level(logging.DEBUG, logger="spkrec"):
            out = parallel.map_chunks(_slow_chunk, range(8), desc="demo step", max_chunks=4, pause=0.05)
    assert [x for part in out for x in part] == [2 * i for i in range(8)]
    shown = term.getvalue()
    assert "demo step:" in shown and "/4 [" in shown and "chunk/s" in shown and "\r" in shown  # a tqdm bar
    assert "<" in shown  # the ETA (elapsed<remaining)
    assert "chunks (" not in shown  # the per-chunk lines are DEBUG records, for the log only
    assert sum("demo step: " in r.getMessage() and r.levelno == logging.DEBUG for r in caplog.records) >= 2
    plain = io.StringIO()  # not a terminal: no bar
    with CommandLogging("demo", stream=plain):
        assert parallel.PROGRESS_BAR is False
        parallel.map_chunks(_slow_chunk, range(4), desc="demo step", pause=0.0)
    assert plain.getvalue() == ""
    with CommandLogging("demo", stream=_Terminal(), quiet=True):
        assert parallel.PROGRESS_BAR is False
    assert parallel.PROGRESS_BAR is None  # restored


def test_summary_handler_holds_info_and_prints_warnings_at_once():
    stream = io.StringIO()
    log = logging.getLogger("spkrec")
    with CommandLogging("demo", stream=stream) as logs:
        log.info("first")
        log.debug("detail")
        log.warning("careful")
        log.info("last")
        assert stream.getvalue() == "spkrec demo: careful\n"
        logs.summary()
    assert stream.getvalue() == "spkrec demo: careful\nspkrec demo: last\n"


# ------------------------------------------------------------------------------------ option names
def test_renamed_options_keep_their_old_spelling_hidden():
    assert RENAMED_OPTIONS, "nothing renamed"
    for verb, renames in RENAMED_OPTIONS.items():
        parser, _ = build_parser(verb)
        text = parser.format_help()
        for old, new in renames.items():
            assert re.search(re.escape(new) + r"\b", text), (verb, new)
            assert not re.search(re.escape(old) + r"(?![-\w])", text), (verb, old)  # hidden
            assert parser._option_string_actions[old].dest == parser._option_string_actions[new].dest
    parser, _ = build_parser("identify-files")
    old = parser.parse_args(["--top", "3", "sys", "db", "a.wav"])
    new = parser.parse_args(["--top-k", "3", "sys", "db", "a.wav"])
    assert old == new and new.top == 3
    parser, _ = build_parser("evaluate")
    assert parser.parse_args(["--p-target", "0.05", "s", "t"]) == parser.parse_args(["--target-prior", "0.05", "s", "t"])


def test_every_option_of_every_verb_has_a_description():
    for verb in VERBS:
        try:
            parser, _ = build_parser(verb)
        except Exception as err:  # an optional extra missing (torch): its verbs cannot be built
            pytest.skip(f"{verb}: {err}")
        for action in parser._actions:
            if action.option_strings and action.help != "==SUPPRESS==":
                assert action.help, (verb, action.option_strings)


# ------------------------------------------------------------------------------------ recipe run()
DRIVER = """set -euo pipefail
stage=0; stop_stage=100; exp=$1; verbose=false; quiet=false
. {root}/recipes/utils/stages.sh
current_stage=7
run "$exp/a/log/check.log" spkrec validate-data-dir --no-check-audio --nj 2 "$2"
run "$exp/a/log/check.log" spkrec validate-data-dir --no-check-audio "$2"
run "$exp/a/log/list.log" ls "$2"
run "$exp/a/log/bad.log" spkrec combine-data-dirs "$exp/combined" "$exp/no-such-dir"
echo not reached
"""


def test_recipe_run_writes_kaldi_style_logs_and_shows_a_failure(feats_dir, tmp_path):
    driver = tmp_path / "driver.sh"
    driver.write_text(DRIVER.format(root=ROOT))
    exp = tmp_path / "exp"
    r = subprocess.run(["bash", str(driver), str(exp), str(feats_dir)], capture_output=True, text=True,
                       env=_env(), timeout=300)
    assert r.returncode == 1 and "not reached" not in r.stdout
    logs = exp / "a" / "log"
    first, second = (logs / "check.log").read_text(), (logs / "check.2.log").read_text()  # one log per command
    for text, threads in ((first, 2), (second, 1)):
        lines = text.splitlines()
        assert lines[0] == f"# spkrec validate-data-dir --no-check-audio {'--nj 2 ' if threads == 2 else ''}{feats_dir}"
        assert lines[1].startswith("# Started at ")
        assert re.fullmatch(rf"# Accounting: time=\d+\.\d threads={threads}", lines[-2]), lines[-2]
        assert lines[-1].startswith("# Ended (code 0) at ")
        assert any("INFO:" in line and "OK" in line for line in lines)
    assert "feats.scp" in (logs / "list.log").read_text()  # another command's output goes to its log
    bad = (logs / "bad.log").read_text().splitlines()
    assert bad[-1].startswith("# Ended (code 1) at ")
    # the terminal: one summary line per spkrec command, then the failure with the log's path and tail
    err = r.stderr.splitlines()
    assert sum(line.startswith("spkrec validate-data-dir:") and "OK" in line for line in err) == 2
    assert any("stage 7 failed (code 1): spkrec combine-data-dirs" in line for line in err)
    assert any(str(logs / "bad.log") in line for line in err)
    assert any(line.startswith("  | # Ended (code 1)") for line in err)
    assert sum("error:" in line for line in err) == 2  # the command's own line, and in the log tail
    # a rerun rewrites the logs (they do not grow)
    r2 = subprocess.run(["bash", str(driver), str(exp), str(feats_dir)], capture_output=True, text=True,
                        env=_env(), timeout=300)
    assert r2.returncode == 1 and (logs / "check.log").read_text().count("# Started at") == 1
    assert not (logs / "check.3.log").exists()
