"""End-to-end: recipes/so762_spoof on data/so762-mini split into two halves of speakers (training /
evaluation), with the simulated attacks; checks the results table."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "data" / "so762-mini"
pytestmark = pytest.mark.slow


def _half(src, dest, speakers):
    dest.mkdir()
    (dest / "WAVE").symlink_to(src / "WAVE")
    (dest / "spk2gender").write_text((src / "spk2gender").read_text())
    lines = [line for line in (src / "utt2spk").read_text().splitlines() if line.split()[1] in speakers]
    (dest / "utt2spk").write_text("\n".join(lines) + "\n")


def test_so762_spoof_recipe(tmp_path):
    pytest.importorskip("pyworld")
    pytest.importorskip("pyroomacoustics")
    speakers = sorted({line.split()[1] for line in (CORPUS / "utt2spk").read_text().splitlines()})
    _half(CORPUS, tmp_path / "a", set(speakers[::2][:12]))
    _half(CORPUS, tmp_path / "b", set(speakers[1::2][:12]))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    cmd = ["bash", str(ROOT / "recipes" / "so762_spoof" / "run.sh"), "--train", str(tmp_path / "a"),
           "--eval", str(tmp_path / "b"), "--exp", str(tmp_path / "exp"), "--data", str(tmp_path / "data"),
           "--nj", "1", "--cm-utts-per-spk", "2", "--cm-num-gauss", "16", "--num-gauss", "16", "--max-test-per-spk", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-4000:]
    text = (tmp_path / "exp" / "results.md").read_text()
    for system in ("LFCC-GMM", "CQCC-GMM"):
        assert f"### {system}: CM EER" in text and f"### {system}: ASV + CM" in text
    for attack, seen in (("griffin_lim", "yes"), ("replay", "yes"), ("world", "yes"), ("mel_griffin_lim", "**no**")):
        assert re.search(rf"\| {attack} \| {re.escape(seen)} \| 12 \| 12 \|", text), text
    tdcf = [float(v) for v in re.findall(r"\| min t-DCF \(ASVspoof 2019\) \| \| ([0-9.]+) \|", text)]
    assert len(tdcf) == 2 and all(0.0 <= v <= 1.0 + 1e-9 for v in tdcf)
    # the CM must gate most spoofs that the ASV system accepts
    rows = re.findall(r"\| spoof false-accept rate \(%\) \| ([0-9.]+) \| ([0-9.]+) \|", text)
    assert rows and all(float(tandem) <= float(alone) for alone, tandem in rows)
    # a rerun finds every stage done
    again = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert again.returncode == 0 and "skipping" in again.stderr
