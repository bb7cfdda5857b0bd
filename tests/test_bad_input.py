"""Bad input through the CLI: every case exits non-zero with one error line naming the file (and line),
no traceback, and leaves nothing a later stage would trust. Real speech from data/so762-mini."""
import errno
import os
import pickle
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.io.kaldi_io import load_matrix, read_vectors, write_matrices, write_vectors

CORPUS = Path(__file__).resolve().parents[1] / "data" / "so762-mini"
UTTS = [("0001", "000010011"), ("0001", "000010035"), ("0001", "000010053"),
        ("0005", "000050003"), ("0005", "000050010"), ("0005", "000050024")]


def flac(spk, utt):
    return CORPUS / "WAVE" / f"SPEAKER{spk}" / f"{utt}.flac"


def write_data(path, wavs):
    """A data dir from ``{utt: audio path or wav.scp value}`` (speaker = prefix before '-')."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    (path / "wav.scp").write_text("".join(f"{u} {wavs[u]}\n" for u in sorted(wavs)))
    (path / "utt2spk").write_text("".join(f"{u} {u.split('-')[0]}\n" for u in sorted(wavs)))
    spk2utt = {}
    for u in sorted(wavs):
        spk2utt.setdefault(u.split("-")[0], []).append(u)
    (path / "spk2utt").write_text("".join(f"{s} {' '.join(us)}\n" for s, us in sorted(spk2utt.items())))
    return path


def fails(capsys, argv, *expect):
    """Run ``spkrec argv`` in-process; assert rc != 0, no traceback, one error line containing ``expect``."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc != 0, err
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith(f"spkrec {argv[0]}: error:")]
    assert len(errors) == 1, err
    for text in expect:
        assert str(text) in errors[0], errors[0]
    return errors[0]


def dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """Features, VAD and a 4-Gaussian UBM (no deltas, no CMVN) of 6 real utterances of 2 speakers."""
    root = tmp_path_factory.mktemp("bad")
    data = write_data(root / "data", {f"{s}-{u}": flac(s, u) for s, u in UTTS})
    assert main(["compute-feats", "-q", str(data), str(root / "mfcc")]) == 0
    assert main(["compute-vad", "-q", str(data)]) == 0
    assert main(["train-ubm", "-q", "--num-gauss", "4", "--num-iters", "1", "--num-iters-per-split", "1",
                 "--deltas-order", "0", "--cmvn", "none", str(data), str(root / "ubm")]) == 0
    assert main(["enroll-gmm", "-q", str(root / "ubm"), str(data), str(root / "models")]) == 0
    (root / "trials").write_text("".join(f"{s} {s}-{u} target\n" for s, u in UTTS) +
                                 "".join(f"{'0005' if s == '0001' else '0001'} {s}-{u} nontarget\n" for s, u in UTTS))
    return root


def copy_data(base, dest, tables=("wav.scp", "utt2spk", "feats.scp", "vad.scp")):
    dest = Path(dest)
    dest.mkdir(parents=True)
    for name in ("spk2utt",) + tuple(tables):
        if (base / "data" / name).exists():
            shutil.copy(base / "data" / name, dest / name)
    return dest


# ------------------------------------------------------------------------------------------- tables
def test_command_in_feats_scp_is_not_run(base, tmp_path, capsys):
    marker = tmp_path / "marker"
    evil = tmp_path / "evil.sh"
    evil.write_text(f"#!/bin/sh\ntouch {marker}\n")
    evil.chmod(0o755)
    data = copy_data(base, tmp_path / "d", ("wav.scp", "utt2spk", "feats.scp"))
    lines = (data / "feats.scp").read_text().splitlines()
    lines[1] = f"{lines[1].split()[0]} {evil}|"
    (data / "feats.scp").write_text("\n".join(lines) + "\n")
    fails(capsys, ["compute-vad", data], f"{data / 'feats.scp'}:2:", "--allow-commands")
    assert not (data / "vad.scp").exists()
    fails(capsys, ["train-ubm", "--num-gauss", "2", data, tmp_path / "ubm"], f"{data / 'feats.scp'}:2:")
    assert not (tmp_path / "ubm" / "final.ubm.npz").exists()
    fails(capsys, ["score-gmm", base / "ubm", base / "models", data, base / "trials", tmp_path / "s.txt"],
          "feats.scp:2:", "command")
    assert not (tmp_path / "s.txt").exists()
    # validate-data-dir lists it as a problem
    assert main(["validate-data-dir", "--no-check-audio", str(data)]) == 1
    assert "feats.scp:2: entry is a command" in capsys.readouterr().out
    # a multi-word command, and the output-pipe form
    for entry in (f"sh {evil} |", f"| sh {evil}"):
        lines[1] = f"{lines[1].split()[0]} {entry}"
        (data / "feats.scp").write_text("\n".join(lines) + "\n")
        fails(capsys, ["compute-vad", data], "feats.scp:2:", "command")
        fails(capsys, ["compute-vad", "--allow-commands", data], "feats.scp:2:") if entry[0] == "|" else None
    assert not marker.exists()


def test_command_in_vector_scp_is_not_run(base, tmp_path, capsys):
    marker = tmp_path / "marker"
    write_vectors(tmp_path / "iv.ark", tmp_path / "iv.scp", [("0001", np.ones(3)), ("0005", -np.ones(3))])
    (tmp_path / "evil.scp").write_text(f"0001-000010011 touch {marker} |\n")
    (tmp_path / "trials").write_text("0001 0001-000010011 target\n0005 0001-000010011 nontarget\n")
    fails(capsys, ["score-cosine", tmp_path / "iv.scp", tmp_path / "evil.scp", tmp_path / "trials",
                   tmp_path / "scores"], f"{tmp_path / 'evil.scp'}:1:", "--allow-commands")
    assert not marker.exists() and not (tmp_path / "scores").exists()


def test_allowed_command_entry_reads_a_kaldi_matrix(base, tmp_path, capsys):
    data = copy_data(base, tmp_path / "d", ("wav.scp", "utt2spk", "feats.scp"))
    lines = (data / "feats.scp").read_text().splitlines()
    key, rx = lines[0].split()
    single = tmp_path / "one.mat"
    x = load_matrix(rx)
    kaldiio.save_mat(str(single), x)
    lines[0] = f"{key} cat {single} |"
    (data / "feats.scp").write_text("\n".join(lines) + "\n")
    assert main(["compute-vad", "-q", "--allow-commands", str(data)]) == 0
    want = load_matrix(open(base / "data" / "vad.scp").read().split()[1])
    np.testing.assert_array_equal(load_matrix(open(data / "vad.scp").read().split()[1]), want)
    np.testing.assert_array_equal(load_matrix(f"cat {single} |", allow_commands=True), x)


class _Evil:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_entry_is_refused_even_with_allow_commands(base, tmp_path, capsys):
    marker = tmp_path / "marker"
    data = copy_data(base, tmp_path / "d", ("wav.scp", "utt2spk", "feats.scp"))
    ark = tmp_path / "evil.ark"
    ark.write_bytes(b"0001-000010011 PKL" + pickle.dumps(_Evil(marker)))
    lines = (data / "feats.scp").read_text().splitlines()
    lines[0] = f"0001-000010011 {ark}:15"
    (data / "feats.scp").write_text("\n".join(lines) + "\n")
    for extra in ([], ["--allow-commands"]):
        fails(capsys, ["compute-vad", *extra, data], f"{data / 'feats.scp'}:1:", "pickle")
        fails(capsys, ["train-ubm", *extra, "--num-gauss", "2", data, tmp_path / "ubm"], "feats.scp:1:", "pickle")
    # a command whose output is a pickle: run (allowed) but its output refused
    (data / "feats.scp").write_text(f"0001-000010011 tail -c +16 {ark} |\n")
    fails(capsys, ["compute-vad", "--allow-commands", data], "feats.scp:1", "pickle")
    assert not marker.exists() and not (data / "vad.scp").exists()
    with pytest.raises(SpkrecError, match="pickle"):
        load_matrix(f"{ark}:15")
    assert not marker.exists()


def test_npy_and_garbage_entries_are_refused(tmp_path):
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'n.ark'},{tmp_path / 'n.scp'}", write_function="numpy") as w:
        w("a", np.ones(3, dtype=np.float32))
    with pytest.raises(SpkrecError, match=r"n\.scp:1: .*NPY"):
        read_vectors(tmp_path / "n.scp")
    (tmp_path / "g.ark").write_bytes(b"a xyz\n")
    (tmp_path / "g.scp").write_text(f"a {tmp_path / 'g.ark'}:2\n")
    with pytest.raises(SpkrecError, match=r"g\.scp:1: .*not a Kaldi matrix"):
        read_vectors(tmp_path / "g.scp")
    ok = tmp_path / "ok.ark"
    write_vectors(ok, tmp_path / "ok.scp", [("a", np.arange(4.0))])
    ok.write_bytes(ok.read_bytes()[:-3])  # truncated data
    with pytest.raises(SpkrecError, match=r"ok\.scp:1: .*truncated"):
        read_vectors(tmp_path / "ok.scp")
    write_vectors(tmp_path / "nan.ark", tmp_path / "nan.scp", [("a", np.array([1.0, np.nan]))])
    with pytest.raises(SpkrecError, match=r"nan\.scp:1: .*NaN or inf"):
        read_vectors(tmp_path / "nan.scp")


def test_spk2utt_disagreeing_with_utt2spk(base, tmp_path, capsys):
    data = copy_data(base, tmp_path / "d", ("wav.scp", "utt2spk", "feats.scp", "vad.scp"))
    (data / "spk2utt").write_text("0001 0001-000010011 0001-000010035 0005-000050003\n"
                                  "0005 0001-000010053 0005-000050010 0005-000050024\n")
    fails(capsys, ["enroll-gmm", base / "ubm", data, tmp_path / "models"], f"{data / 'spk2utt'}:1:",
          "0005-000050003", "utt2spk")
    assert not (tmp_path / "models").exists()
    write_vectors(tmp_path / "iv.ark", data / "iv.scp", [(f"{s}-{u}", np.ones(3) + i) for i, (s, u) in
                                                         enumerate(UTTS)])
    fails(capsys, ["score-cosine", "--enroll-spk2utt", data / "spk2utt", data / "iv.scp", data / "iv.scp",
                   base / "trials", tmp_path / "s"], "spk2utt:1:")


# -------------------------------------------------------------------------------------------- audio
def test_nan_wav_is_refused(tmp_path, capsys):
    x, rate = sf.read(flac("0001", "000010011"), dtype="float32")
    x[1000] = np.nan
    sf.write(tmp_path / "nan.wav", x, rate, subtype="FLOAT")
    sf.write(tmp_path / "inf.wav", np.where(np.arange(x.size) == 5, np.inf, x), rate, subtype="FLOAT")
    data = write_data(tmp_path / "d", {"0001-a": flac("0001", "000010011"), "0001-b": tmp_path / "nan.wav",
                                       "0001-c": tmp_path / "inf.wav"})
    (data / "feats.scp").write_text("0001-a /old/feats.ark:10\n")  # from an earlier run: not to be trusted
    fails(capsys, ["compute-feats", data, tmp_path / "f"], f"{data / 'wav.scp'}:2:", "non-finite")
    assert not (data / "feats.scp").exists()
    assert main(["validate-data-dir", "--decode", str(data)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == [f"{data / 'wav.scp'}:2", f"{data / 'wav.scp'}:3"]


def test_truncated_wav_and_flac(tmp_path, capsys):
    x, rate = sf.read(flac("0001", "000010011"), dtype="int16")
    sf.write(tmp_path / "full.wav", x, rate, subtype="PCM_16")
    wav = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "half.wav").write_bytes(wav[:len(wav) // 2])
    fl = flac("0001", "000010035").read_bytes()
    (tmp_path / "half.flac").write_bytes(fl[:len(fl) // 2])
    data = write_data(tmp_path / "d", {"0001-a": tmp_path / "full.wav", "0001-b": tmp_path / "half.wav",
                                       "0001-c": tmp_path / "half.flac"})
    # header-only check finds the WAV (the header says more samples than the file holds)
    assert main(["validate-data-dir", str(data)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 1 and out[0].startswith(f"{data / 'wav.scp'}:2: ") and "truncated" in out[0]
    assert f"{x.size} samples" in out[0]
    # --decode (in 2 jobs) finds both, each by line
    assert main(["validate-data-dir", "--decode", "--nj", "2", str(data)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(": ")[0] for line in out] == [f"{data / 'wav.scp'}:2", f"{data / 'wav.scp'}:3"]
    fails(capsys, ["compute-feats", data, tmp_path / "f"], f"{data / 'wav.scp'}:2:", "truncated")
    assert not (data / "feats.scp").exists()
    (data / "wav.scp").write_text(f"0001-a {tmp_path / 'full.wav'}\n0001-c {tmp_path / 'half.flac'}\n")
    (data / "utt2spk").write_text("0001-a 0001\n0001-c 0001\n")
    fails(capsys, ["compute-feats", data, tmp_path / "f"], f"{data / 'wav.scp'}:2:")
    assert not (data / "feats.scp").exists()


def test_wav_scp_command_gets_no_stdin_and_a_timeout(tmp_path, capsys):
    data = write_data(tmp_path / "d", {"0001-a": "cat |"})
    fails(capsys, ["compute-feats", "--allow-commands", data, tmp_path / "f"], "wav.scp:1:", "nothing")
    data = write_data(tmp_path / "e", {"0001-a": f"sleep 10; cat {flac('0001', '000010011')} |"})
    fails(capsys, ["compute-feats", "--allow-commands", "--command-timeout", "0.5", data, tmp_path / "f"],
          "wav.scp:1:", "did not finish in 0.5 s")
    assert not (data / "feats.scp").exists()


def test_latin1_path_is_reported(tmp_path, capsys):
    data = tmp_path / "d"
    data.mkdir()
    (data / "wav.scp").write_bytes(b"0001-a /data/caf\xe9.wav\n")
    (data / "utt2spk").write_text("0001-a 0001\n")
    fails(capsys, ["compute-feats", data, tmp_path / "f"], f"{data / 'wav.scp'}:1:", "0xe9", "not UTF-8")
    assert main(["validate-data-dir", str(data)]) == 1
    assert "wav.scp:1: byte 0xe9 at column 17 is not UTF-8" in capsys.readouterr().out



def test_non_utf8_trials_scores_and_config_name_the_file_and_line(tmp_path, capsys):
    trials, scores, conf = tmp_path / "trials", tmp_path / "scores", tmp_path / "mfcc.conf"
    trials.write_bytes(b"spk1 utt1 target\nspk\xe9 utt2 nontarget\n")
    scores.write_bytes(b"spk1 utt1 0.5\nspk\xe9 utt2 0.1\n")
    good_trials = tmp_path / "good_trials"
    good_trials.write_text("spk1 utt1 target\n")
    fails(capsys, ["evaluate", scores, good_trials], f"{scores}:2: byte 0xe9 at column 4 is not UTF-8")
    good_scores = tmp_path / "good_scores"
    good_scores.write_text("spk1 utt1 0.5\n")
    fails(capsys, ["evaluate", good_scores, trials], f"{trials}:2: byte 0xe9 at column 4 is not UTF-8")
    conf.write_bytes(b"--num-ceps=13\n# r\xe9glage\n")
    data = write_data(tmp_path / "d", {"r1": flac("0001", "000010011")})
    fails(capsys, ["compute-feats", "--config", conf, data, tmp_path / "f"], f"{conf}:2: byte 0xe9")


def test_segment_ending_in_inf(tmp_path, capsys):
    data = write_data(tmp_path / "d", {"r1": flac("0001", "000010011")})
    (data / "utt2spk").write_text("0001-a 0001\n")
    (data / "segments").write_text("0001-a r1 0 inf\n")
    fails(capsys, ["compute-feats", data, tmp_path / "f"], f"{data / 'segments'}:1:", "not finite")
    assert main(["validate-data-dir", "--no-check-audio", str(data)]) == 1
    assert "segments:1: segment times 0 inf are not finite" in capsys.readouterr().out


# ---------------------------------------------------------------------------- outputs and errors
def test_output_path_is_a_directory(base, tmp_path, capsys):
    (tmp_path / "scores").mkdir()
    fails(capsys, ["score-gmm", base / "ubm", base / "models", base / "data", base / "trials", tmp_path / "scores"],
          f"{tmp_path / 'scores'}", "directory")


def test_unwritable_and_read_only_output(base, tmp_path, capsys, monkeypatch):
    if os.geteuid() == 0:
        out = Path("/sys/spkrec-test-unwritable")  # refused even for root
    else:
        (tmp_path / "ro").mkdir(mode=0o500)
        out = tmp_path / "ro" / "ubm"
    line = fails(capsys, ["train-ubm", "--num-gauss", "2", "--num-iters", "1", base / "data", out],
                 str(out), "check the permissions")
    assert "Permission denied" in line or "Operation not permitted" in line
    real_replace = os.replace

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", dst)
    monkeypatch.setattr(os, "replace", read_only)
    fails(capsys, ["score-gmm", base / "ubm", base / "models", base / "data", base / "trials", tmp_path / "s.txt"],
          "Read-only file system", "s.txt", "write the outputs elsewhere")
    monkeypatch.setattr(os, "replace", real_replace)
    assert not (tmp_path / "s.txt").exists() and not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def _save_header(path, header_bytes, arrays):
    np.savez(path, __header__=np.frombuffer(header_bytes, dtype=np.uint8), **arrays)


def test_bad_model_files(base, tmp_path, capsys):
    from spkrec.io.atomic import load_npz
    arrays, meta = load_npz(base / "ubm" / "final.ubm.npz")
    good = {k: v for k, v in arrays.items()}
    missing = dict(good)
    del missing["means"]
    _save_header(tmp_path / "missing.npz", b'{"kind": "DiagGMM", "format_version": 1, "meta": {}}', missing)
    _save_header(tmp_path / "badjson.npz", b'{"kind": "DiagGMM", "form', good)
    _save_header(tmp_path / "notdict.npz", b'[1, 2]', good)
    np.savez(tmp_path / "object.npz", __header__=np.frombuffer(b'{"kind": "DiagGMM"}', np.uint8),
             means=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "text.npz").write_text("not a zip\n")
    cases = {"missing.npz": "no array 'means'", "badjson.npz": "corrupt model header",
             "notdict.npz": "corrupt model header", "object.npz": "not a readable", "text.npz": "not a readable"}
    for name, what in cases.items():
        fails(capsys, ["enroll-gmm", tmp_path / name, base / "data", tmp_path / "m"], str(tmp_path / name), what)
        fails(capsys, ["score-gmm", tmp_path / name, base / "models", base / "data", base / "trials",
                       tmp_path / "s"], str(tmp_path / name), what)
    assert not (tmp_path / "m").exists() and not (tmp_path / "s").exists()


def test_feature_dimension_mismatch(base, tmp_path, capsys):
    line = fails(capsys, ["enroll-gmm", "--deltas-order", "2", base / "ubm", base / "data", tmp_path / "m"],
                 "feats.scp", "dimension 39", "(13 stored x 3 with --deltas-order 2)", "dimension 13 (13 x 1",
                 "'deltas_order': 0")
    assert "broadcast" not in line
    fails(capsys, ["score-gmm", "--deltas-order", "1", base / "ubm", base / "models", base / "data", base / "trials",
                   tmp_path / "s"], "dimension 26", "dimension 13")
    fails(capsys, ["extract-supervectors", "--deltas-order", "1", base / "ubm", base / "data", tmp_path / "sv"],
          "dimension 26")
    assert not (tmp_path / "m").exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize("argv, option", [
    (["train-ubm", "--nj", "0"], "--nj"), (["train-ubm", "--nj", "-3"], "--nj"),
    (["train-ubm", "--num-gauss", "0"], "--num-gauss"), (["train-ubm", "--var-floor", "0"], "--var-floor"),
    (["train-ubm", "--subsample", "0"], "--subsample"), (["compute-vad", "--nj", "0"], "--nj"),
    (["score-gmm", "--top-c", "0"], "--top-c"), (["enroll-gmm", "--relevance-factor", "-1"], "--relevance-factor"),
    (["train-ubm", "--var-floor", "nan"], "--var-floor"),
    (["evaluate", "--p-target", "1"], "--p-target"), (["train-ivector-extractor", "--tv-dim", "0"], "--tv-dim"),
])
def test_numeric_options_are_validated(base, tmp_path, capsys, argv, option):
    verb, extra = argv[0], argv[1:]
    positional = {"train-ubm": [base / "data", tmp_path / "u"], "compute-vad": [base / "data", tmp_path / "v"],
                  "score-gmm": [base / "ubm", base / "models", base / "data", base / "trials", tmp_path / "s"],
                  "enroll-gmm": [base / "ubm", base / "data", tmp_path / "m"],
                  "evaluate": [tmp_path / "scores", base / "trials"],
                  "train-ivector-extractor": [base / "ubm", base / "data", tmp_path / "x"]}[verb]
    rc = main([verb, *extra, *map(str, positional)]) if option != "--var-floor" or extra[-1] != "nan" else None
    if rc is None:
        with pytest.raises(SystemExit):  # not a number at all: argparse's usage error
            main([verb, *extra, *map(str, positional)])
        return
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f"argument {option}" in err and "out of range" in err
    assert not list(tmp_path.iterdir())  # nothing written


def test_nan_and_identical_features_stop_training(base, tmp_path, capsys):
    from spkrec.gmm import DiagGMM
    feats = {u: np.asarray(load_matrix(rx)) for u, rx in
             (line.split() for line in (base / "data" / "feats.scp").read_text().splitlines())}
    bad = dict(feats)
    key = sorted(bad)[3]
    bad[key] = bad[key].copy()
    bad[key][7, 2] = np.nan
    d = tmp_path / "nan"
    d.mkdir()
    write_matrices(d / "feats.ark", d / "feats.scp", sorted(bad.items()))
    (d / "utt2spk").write_text("".join(f"{u} {u[:4]}\n" for u in sorted(bad)))
    fails(capsys, ["train-ubm", "--num-gauss", "2", d, tmp_path / "ubm"], f"{d / 'feats.scp'}:4:", "nan",
          "frame 7")
    assert not (tmp_path / "ubm" / "final.ubm.npz").exists()
    fails(capsys, ["enroll-gmm", base / "ubm", d, tmp_path / "m"], "feats.scp:4:")
    # library: NaN, overflowing and identical frames
    X = np.random.default_rng(0).normal(size=(500, 3))
    X[10, 1] = np.nan
    with pytest.raises(SpkrecError, match="features contain nan at frame 10"):
        DiagGMM(n_components=2).fit(X)
    with pytest.raises(SpkrecError, match="NaN or inf"), np.errstate(over="ignore", invalid="ignore"):
        DiagGMM(n_components=2).fit(np.full((500, 3), 1e200) * np.arange(1, 4))
    with pytest.raises(SpkrecError, match="all 500 training frames are identical"):
        DiagGMM(n_components=2).fit(np.ones((500, 3)))
    with pytest.raises(SpkrecError, match="n_components must be an integer >= 1"):
        DiagGMM(n_components=0).fit(X[11:])
    d = tmp_path / "same"
    d.mkdir()
    write_matrices(d / "feats.ark", d / "feats.scp", [(f"0001-{i}", np.ones((50, 4), np.float32)) for i in range(3)])
    (d / "utt2spk").write_text("".join(f"0001-{i} 0001\n" for i in range(3)))
    fails(capsys, ["train-ubm", "--num-gauss", "2", "--deltas-order", "0", "--cmvn", "none", d, tmp_path / "u2"],
          "identical")


def test_constant_dimension_is_floored_not_exploded():
    """One constant dimension: warned, floored relative to the others; scores stay bounded."""
    from spkrec.gmm import DiagGMM, gmm_ubm_llr, map_adapt
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 3))
    X[:, 2] = 5.0
    ubm = DiagGMM(n_components=4, n_iter=3).fit(X)
    assert ubm.var_floor_[2] > 0 and np.all(ubm.variances_[:, 2] >= ubm.var_floor_[2])
    Y = rng.normal(size=(300, 3)) + [0.5, 0, 0]
    Y[:, 2] = 5.0 + rng.normal(scale=0.1, size=300)     # the test data do vary in that dimension
    spk = map_adapt(ubm, Y[:150])
    assert np.allclose(ubm.var_floor_[2], 1e-3 * np.median(X[:, :2].var(axis=0)), rtol=0.05)
    assert abs(gmm_ubm_llr(spk, ubm, Y[150:])) < 10


def test_real_speech_floor_does_not_bind(base):
    """On real MFCCs the relative floor is 1e-3 x the global variance, as before (no minimum applies)."""
    from spkrec.gmm import DiagGMM
    from spkrec.gmm.diag import MIN_VAR_RATIO
    ubm = DiagGMM.load(base / "ubm" / "final.ubm.npz")
    rows = [np.asarray(load_matrix(line.split()[1])) for line in
            (base / "data" / "feats.scp").read_text().splitlines()]
    from spkrec.features.pipeline import FeatureLoader
    loader = FeatureLoader(base / "data" / "feats.scp", base / "data" / "vad.scp", deltas_order=0, cmvn="none")
    X = np.concatenate([loader(u) for u in loader.utt_ids]).astype(np.float64)
    assert len(rows) == 6
    np.testing.assert_allclose(ubm.var_floor_, 1e-3 * X.var(axis=0), rtol=1e-6)
    assert X.var(axis=0).min() > 100 * MIN_VAR_RATIO * np.median(X.var(axis=0))


def test_compute_vad_failure_writes_no_vad_scp(base, tmp_path, capsys):
    data = copy_data(base, tmp_path / "d", ("wav.scp", "utt2spk", "feats.scp"))
    fails(capsys, ["compute-vad", "--vad-energy-threshold=1000", data], "no utterance has a voiced frame")
    assert not (data / "vad.scp").exists()


def test_infinite_scores_are_an_error(base, tmp_path, capsys):
    (tmp_path / "s.txt").write_text("0001 0001-000010011 1.5\n0005 0001-000010011 -inf\n")
    (tmp_path / "t").write_text("0001 0001-000010011 target\n0005 0001-000010011 nontarget\n")
    fails(capsys, ["evaluate", tmp_path / "s.txt", tmp_path / "t"], f"{tmp_path / 's.txt'}:2:", "-inf")
    from spkrec.io.scores import write_scores
    with pytest.raises(SpkrecError, match="is inf"):
        write_scores(tmp_path / "w.txt", [("a", "b", np.inf)])
    assert not (tmp_path / "w.txt").exists()


# ------------------------------------------------------------------------ permissions and cleanup
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_outputs_follow_the_umask(base, tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        assert main(["score-gmm", "-q", str(base / "ubm"), str(base / "models"), str(base / "data"),
                     str(base / "trials"), str(tmp_path / "scores.txt")]) == 0
        assert main(["enroll-gmm", "-q", str(base / "ubm"), str(base / "data"), str(tmp_path / "m")]) == 0
        write_matrices(tmp_path / "x.ark", tmp_path / "x.scp", [("a", np.ones((2, 2)))])
    finally:
        os.umask(old)
    for p in (tmp_path / "scores.txt", tmp_path / "m" / "speakers.npz", tmp_path / "x.ark", tmp_path / "x.scp"):
        assert os.stat(p).st_mode & 0o777 == mode, p


def test_stale_temporaries_of_dead_writers_are_removed(tmp_path):
    from spkrec.io import atomic
    host = atomic.owner_tag().rpartition("-")[0]
    dead, alive = dead_pid(), os.getpid()
    stale = tmp_path / f".scores.txt.{host}-{dead}.abcd1234.tmp"
    live = tmp_path / f".scores.txt.{host}-{alive}.abcd1234.tmp"
    other_host = tmp_path / f".scores.txt.otherhost-{dead}.abcd1234.tmp"
    for p in (stale, live, other_host):
        p.write_text("partial")
    atomic.write_text_atomic(tmp_path / "scores.txt", "x\n")
    assert not stale.exists() and live.exists() and other_host.exists()
    assert (tmp_path / "scores.txt").read_text() == "x\n"


def test_stale_shared_folders_of_dead_processes_are_removed(tmp_path, monkeypatch):
    from spkrec import parallel
    from spkrec.io.atomic import owner_tag
    host = owner_tag().rpartition("-")[0]
    dead = dead_pid()
    stale = tmp_path / f"spkrec-shared-{host}-{dead}-abcd1234"
    results = tmp_path / f"spkrec-results-{host}-{dead}-abcd1234"
    mine = tmp_path / f"spkrec-shared-{host}-{os.getpid()}-abcd1234"
    other = tmp_path / f"spkrec-shared-{socket.gethostname()}x-{dead}-abcd1234"
    unrelated = tmp_path / "spkrec-notes"
    for p in (stale, results, mine, other, unrelated):
        p.mkdir()
        (p / "a.npy").write_bytes(b"x")
    monkeypatch.setenv("SPKREC_TEMP_FOLDER", str(tmp_path))
    monkeypatch.setattr(parallel, "_swept", set())
    shared = parallel.SharedArrays({"a": np.ones(3)}, parallel.ParallelConfig(nj=2))
    assert os.path.basename(shared._dir).startswith(f"spkrec-shared-{owner_tag()}-")
    assert not stale.exists() and not results.exists()
    assert mine.exists() and other.exists() and unrelated.exists()


# ------------------------------------------------------------------- cases that already passed
def test_cases_that_already_passed(base, tmp_path, capsys):
    data = write_data(tmp_path / "d", {"0001-a": tmp_path / "gone.flac"})
    fails(capsys, ["compute-feats", data, tmp_path / "f"], f"{data / 'wav.scp'}:1:", "not found")
    fails(capsys, ["train-ubm", data, tmp_path / "u"], "feats.scp", "compute-feats")
    fails(capsys, ["score-gmm", tmp_path / "none.npz", base / "models", base / "data", base / "trials",
                   tmp_path / "s"], "none.npz", "not found")
    fails(capsys, ["enroll-gmm", base / "models" / "speakers.npz", base / "data", tmp_path / "m"],
          "'SpeakerGMMs' model, expected 'DiagGMM'")
    (tmp_path / "u2s").write_text("b 1\na 1\n")
    write_vectors(tmp_path / "v.ark", tmp_path / "v.scp", [("a", np.ones(2)), ("b", np.ones(2))])
    assert main(["validate-data-dir", str(tmp_path / "nodir")]) == 1
    capsys.readouterr()
    fails(capsys, ["evaluate", tmp_path / "missing.txt", base / "trials"], "missing.txt")


def test_verbose_gives_the_traceback(base, tmp_path, capsys, monkeypatch):
    def boom(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", dst)
    monkeypatch.setattr(os, "replace", boom)
    argv = ["score-gmm", base / "ubm", base / "models", base / "data", base / "trials", tmp_path / "s.txt"]
    fails(capsys, argv, "No space left on device", "s.txt", "disk is full")
    assert main([str(a) for a in [argv[0], "--verbose", *argv[1:]]]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_lda_and_wccn_need_repeated_speakers(tmp_path, capsys):
    rng = np.random.default_rng(0)
    write_vectors(tmp_path / "v.ark", tmp_path / "v.scp", [(f"s{i:02d}-u0", rng.normal(size=5)) for i in range(12)])
    (tmp_path / "utt2spk").write_text("".join(f"s{i:02d}-u0 s{i:02d}\n" for i in range(12)))
    for steps, who in (("center,lda:3,plda", "LDA"), ("center,wccn,cosine", "WCCN")):
        fails(capsys, ["train-backend", "--steps", steps, tmp_path / "v.scp", tmp_path / "utt2spk",
                       tmp_path / "b.npz"], f"{who}: every one of the 12 speakers has a single training vector",
              "--steps")
    assert not (tmp_path / "b.npz").exists()
