"""Data dirs: readers, writers, DataDir.load_audio (segments, commands), validation, subsets, CLI errors."""
import os
import pickle
import shutil

import numpy as np
import pytest
import soundfile as sf

from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.io.datadir import (DataDir, read_table, subset_data_dir, utt2spk_to_spk2utt, validate_data_dir,
                               write_data_dir, write_table)

SO762 = os.path.join(os.path.dirname(__file__), "..", "data", "so762-mini")
SPK_UTTS = {"0001": ["000010011", "000010035", "000010053"], "0005": ["000050028", "000050038"]}


def flac(spk, utt):
    return os.path.abspath(os.path.join(SO762, "WAVE", f"SPEAKER{spk}", f"{utt}.flac"))


@pytest.fixture
def data(tmp_path):
    """A small valid data dir on real so762 audio (5 utterances, 2 speakers)."""
    wav = {f"{s}-{u}": flac(s, u) for s, us in SPK_UTTS.items() for u in us}
    utt2spk = {f"{s}-{u}": s for s, us in SPK_UTTS.items() for u in us}
    return write_data_dir(tmp_path / "data", wav, utt2spk, {"0001": "m", "0005": "m"})


def cli_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


def lines(path):
    with open(path) as f:
        return f.read().splitlines()


def test_write_and_read_round_trip(data, tmp_path):
    assert lines(data.file("utt2spk"))[0] == "0001-000010011 0001"
    assert lines(data.file("spk2utt")) == ["0001 0001-000010011 0001-000010035 0001-000010053",
                                           "0005 0005-000050028 0005-000050038"]
    d = DataDir(data.path)
    assert d.utts == sorted(d.utt2spk) and len(d.utts) == 5
    assert d.spk2utt == {"0001": ["0001-000010011", "0001-000010035", "0001-000010053"],
                         "0005": ["0005-000050028", "0005-000050038"]}
    assert d.spk2gender == {"0001": "m", "0005": "m"}
    assert d.segments is None and d.feats_scp is None and d.vad_scp is None and d.utt2num_frames is None
    assert d.wav_scp["0005-000050038"] == flac("0005", "000050038")
    assert validate_data_dir(d.path) == []
    d2 = pickle.loads(pickle.dumps(d))
    assert d2.utt2spk == d.utt2spk


def test_write_table_c_order(tmp_path):
    write_table(tmp_path / "t", {"b": 1, "B": [2, 3], "a_1": "x", "a-1": "y"})
    assert lines(tmp_path / "t") == ["B 2 3", "a-1 y", "a_1 x", "b 1"]  # LC_ALL=C order
    assert utt2spk_to_spk2utt({"b2": "b", "a1": "a", "b1": "b"}) == {"a": ["a1"], "b": ["b1", "b2"]}


def test_load_audio_matches_soundfile(data):
    x, rate = data.load_audio("0001-000010035")
    ref, ref_rate = sf.read(flac("0001", "000010035"), dtype="float32")
    assert rate == ref_rate == 16000 and x.dtype == np.float32
    np.testing.assert_array_equal(x, ref * 32768)
    y, rate8 = data.load_audio("0001-000010035", target_rate=8000)
    assert rate8 == 8000 and abs(y.size - ref.size // 2) <= 1


def test_segments(tmp_path):
    rec = flac("0001", "000010011")
    ref = sf.read(rec, dtype="float32")[0] * 32768
    segs = {"0001-a": ("rec1", 0.0, 0.5), "0001-b": ("rec1", 0.25, -1), "0001-c": ("rec1", 1.0, 1.125)}
    d = write_data_dir(tmp_path / "d", {"rec1": rec}, {u: "0001" for u in segs}, segments=segs)
    assert lines(d.file("segments")) == ["0001-a rec1 0 0.5", "0001-b rec1 0.25 -1", "0001-c rec1 1 1.125"]
    d = DataDir(d.path)
    assert d.segments == segs
    np.testing.assert_array_equal(d.load_audio("0001-a")[0], ref[:8000])
    np.testing.assert_array_equal(d.load_audio("0001-b")[0], ref[4000:])
    np.testing.assert_array_equal(d.load_audio("0001-c")[0], ref[16000:18000])
    assert validate_data_dir(d.path) == []
    # an end past the recording by more than 0.5 s is an error naming the segments line
    dur = ref.size / 16000
    write_table(d.file("segments"), {"0001-a": f"rec1 0 {dur + 1:.3f}"})
    write_table(d.file("utt2spk"), {"0001-a": "0001"})
    write_table(d.file("spk2utt"), {"0001": "0001-a"})
    with pytest.raises(SpkrecError, match=r"segments:1: segment ends at .* fix the end time"):
        DataDir(d.path).load_audio("0001-a")
    # write_data_dir without segments removes a stale segments file
    write_data_dir(d.path, {"0001-a": rec}, {"0001-a": "0001"})
    assert not os.path.exists(d.file("segments"))


def test_bad_segment_times(tmp_path):
    d = write_data_dir(tmp_path / "d", {"r": flac("0001", "000010011")}, {"0001-a": "0001"},
                       segments={"0001-a": ("r", 0.0, 1.0)})
    with open(d.file("segments"), "w") as f:
        f.write("0001-a r 2.0 1.0\n")
    with pytest.raises(SpkrecError, match=r"segments:1: bad segment times 2.0 1.0"):
        DataDir(d.path).segments
    assert any("segments:1: bad segment times" in p for p in validate_data_dir(d.path))


def test_command_entry_needs_allow_flag(data):
    table = read_table(data.file("wav.scp"))
    table["0001-000010035"] = f"cat {table['0001-000010035']} |"
    write_table(data.file("wav.scp"), table)
    d = DataDir(data.path)
    with pytest.raises(SpkrecError, match=r"wav.scp:2: audio is a command .*--allow-commands"):
        d.load_audio("0001-000010035")
    x, _ = d.load_audio("0001-000010035", allow_commands=True)
    np.testing.assert_array_equal(x, sf.read(flac("0001", "000010035"), dtype="float32")[0] * 32768)
    assert validate_data_dir(d.path) == []  # commands are not run by validation


@pytest.mark.parametrize("table, text, match", [
    ("utt2spk", "a-1 a\n\na-2 a\n", r"utt2spk:2: blank line in utt2spk"),
    ("utt2spk", "a-1 a\na-2\n", r"utt2spk:2: expected 2 fields in utt2spk, got 1"),
    ("utt2spk", "a-1 a\na-2 a b\n", r"utt2spk:2: expected 2 fields in utt2spk, got 3"),
    ("utt2spk", "a-1 a\na-1 a\n", r"utt2spk:2: duplicate key 'a-1' in utt2spk"),
    ("utt2spk", "a-2 a\na-1 a\n", r"utt2spk:2: utt2spk is not sorted \('a-1' after 'a-2'\)"),
    ("wav.scp", "a-1\n", r"wav.scp:1: expected at least 2 fields"),
    ("feats.scp", "a-1 x.ark:1\nB y.ark:1\n", r"feats.scp:2: feats.scp is not sorted"),
])
def test_malformed_tables(tmp_path, capsys, table, text, match):
    d = tmp_path / "d"
    d.mkdir()
    (d / "utt2spk").write_text("a-1 a\na-2 a\n")
    (d / "wav.scp").write_text("a-1 x.wav\na-2 y.wav\n")
    (d / table).write_text(text)
    with pytest.raises(SpkrecError, match=match):
        getattr(DataDir(d), table.replace(".", "_"))
    problems = validate_data_dir(d, check_audio=False)
    assert any(p for p in problems if __import__("re").search(match, p)), problems
    # the same error, cleanly, through a CLI verb that reads the table
    if table == "utt2spk":
        err = cli_error(capsys, ["make-trials", str(d), str(tmp_path / "e"), str(tmp_path / "t"),
                                 str(tmp_path / "tr"), "--num-enroll", "1"])
        assert __import__("re").search(match, err)


def test_validate_reports_each_problem(data, tmp_path, capsys):
    # spk2utt disagrees with utt2spk, wav.scp lacks an utterance and has an extra one,
    # a missing and a corrupt audio file, a speaker without gender, feats.scp missing an utterance
    with open(data.file("spk2utt"), "w") as f:
        f.write("0001 0001-000010011 0001-000010035 0001-000010053 0005-000050028\n0005 0005-000050038\n")
    bad = tmp_path / "garbage.wav"
    bad.write_bytes(b"RIFF\x00\x01garbage" * 10)
    wav = read_table(data.file("wav.scp"))
    wav["0001-000010035"] = str(tmp_path / "missing.flac")
    wav["0001-000010053"] = str(bad)
    del wav["0005-000050038"]
    wav["0009-x"] = flac("0001", "000010011")
    write_table(data.file("wav.scp"), wav)
    write_table(data.file("spk2gender"), {"0001": "m"})
    write_table(data.file("feats.scp"), {"0001-000010011": "f.ark:10"})
    problems = validate_data_dir(data.path)
    text = "\n".join(problems)
    assert "spk2utt:1: utterance '0005-000050028' is under speaker '0001' but utt2spk says '0005'" in text
    assert "utt2spk:5: utterance '0005-000050038' has no audio in wav.scp" in text
    assert "wav.scp:5: utterance '0009-x' is not in utt2spk" in text
    assert f"wav.scp:2: audio file not found: {tmp_path / 'missing.flac'}" in text
    assert "wav.scp:3: audio file" in text and "does not open" in text
    assert "spk2gender: speaker '0005' has no gender" in text
    assert "feats.scp: utterance '0001-000010035' (and 3 more) of utt2spk has no entry" in text
    assert len(problems) == 7, problems
    assert all(":" in p and ";" in p and "\n" not in p for p in problems)
    # the same through the CLI: one problem per line on stdout, exit 1, no traceback
    rc = main(["validate-data-dir", data.path])
    out, err = capsys.readouterr()
    assert rc == 1 and out.splitlines() == problems and "Traceback" not in err
    # in 2 parallel jobs: the same list
    assert validate_data_dir(data.path, nj=2) == problems
    # --no-check-audio drops the audio problems
    assert len(validate_data_dir(data.path, check_audio=False)) == 5


def test_validate_missing_spk2utt_and_prefix_warning(tmp_path, capsys):
    d = write_data_dir(tmp_path / "d", {"u1": flac("0001", "000010011")}, {"u1": "0001"})
    warnings = []
    assert validate_data_dir(d.path, warnings=warnings) == []
    assert len(warnings) == 1
    assert "utt2spk:1: utterance id 'u1' does not start with its speaker id '0001'" in warnings[0]
    assert main(["validate-data-dir", d.path]) == 0
    assert "warning:" in capsys.readouterr().err
    os.remove(d.file("spk2utt"))
    assert DataDir(d.path).spk2utt == {"0001": ["u1"]}  # derived from utt2spk
    assert any("spk2utt: file not found" in p for p in validate_data_dir(d.path))
    assert validate_data_dir(tmp_path / "nope")[0].endswith("not a directory; give a data dir "
                                                            "(with wav.scp, utt2spk, spk2utt)")


def test_load_audio_errors(data, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(os.urandom(300))
    wav = read_table(data.file("wav.scp"))
    wav["0001-000010053"] = str(bad)
    wav["0005-000050028"] = str(tmp_path / "nothere.wav")
    write_table(data.file("wav.scp"), wav)
    d = DataDir(data.path)
    with pytest.raises(SpkrecError, match=r"wav.scp:3: cannot decode audio"):
        d.load_audio("0001-000010053")
    with pytest.raises(SpkrecError, match=r"wav.scp:4: audio file not found"):
        d.load_audio("0005-000050028")
    del wav["0005-000050038"]
    write_table(data.file("wav.scp"), wav)
    with pytest.raises(SpkrecError, match=r"utt2spk:5: utterance '0005-000050038' is not in .*wav.scp"):
        DataDir(data.path).load_audio("0005-000050038")


def _with_feature_tables(data):
    write_table(data.file("feats.scp"), {u: f"feats.ark:{i * 10}" for i, u in enumerate(data.utts)})
    write_table(data.file("vad.scp"), {u: f"vad.ark:{i * 10}" for i, u in enumerate(data.utts)})
    write_table(data.file("utt2num_frames"), {u: 100 + i for i, u in enumerate(data.utts)})
    return DataDir(data.path)


def test_subset_tables(data, tmp_path, capsys):
    data = _with_feature_tables(data)
    assert data.utt2num_frames["0001-000010035"] == 101 and validate_data_dir(data.path) == []
    first = subset_data_dir(data, tmp_path / "first", first_per_spk=2)
    assert first.utts == ["0001-000010011", "0001-000010035", "0005-000050028", "0005-000050038"]
    last = subset_data_dir(data, tmp_path / "last", last_per_spk=1)
    assert last.utts == ["0001-000010053", "0005-000050038"]
    spk = subset_data_dir(data, tmp_path / "spk", spks=["0005"])
    assert spk.utts == ["0005-000050028", "0005-000050038"] and spk.spk2gender == {"0005": "m"}
    assert spk.feats_scp == {"0005-000050028": "feats.ark:30", "0005-000050038": "feats.ark:40"}
    assert spk.vad_scp == {"0005-000050028": "vad.ark:30", "0005-000050038": "vad.ark:40"}
    assert spk.utt2num_frames == {"0005-000050028": 103, "0005-000050038": 104}
    assert list(spk.wav_scp) == spk.utts and spk.spk2utt == {"0005": spk.utts}
    for d in (first, last, spk):
        assert validate_data_dir(d.path) == []
    # through the CLI with a list file
    (tmp_path / "list").write_text("0001-000010053\n0005-000050028\n")
    argv = ["subset-data-dir", data.path, str(tmp_path / "u"), "--utt-list", str(tmp_path / "list")]
    assert main(argv) == 0
    assert DataDir(tmp_path / "u").utts == ["0001-000010053", "0005-000050028"]
    (tmp_path / "list").write_text("0001-000010053\n0007-x\n")
    err = cli_error(capsys, argv)
    assert "utterance '0007-x' (of 1 unknown) is not in this data dir" in err
    err = cli_error(capsys, ["subset-data-dir", data.path, str(tmp_path / "u"), "--first-utts-per-spk", "0"])
    assert "must be >= 1" in err


def test_subset_with_segments(tmp_path):
    recs = {"r1": flac("0001", "000010011"), "r2": flac("0001", "000010035"), "r3": flac("0005", "000050028")}
    segs = {"0001-a": ("r1", 0, 1), "0001-b": ("r2", 0, 1), "0001-c": ("r2", 1, 2), "0005-a": ("r3", 0, -1)}
    d = write_data_dir(tmp_path / "d", recs, {u: u[:4] for u in segs}, segments=segs)
    sub = subset_data_dir(d, tmp_path / "s", utts=["0001-c", "0005-a"])
    assert sub.segments == {"0001-c": ("r2", 1.0, 2.0), "0005-a": ("r3", 0.0, -1.0)}
    assert list(sub.wav_scp) == ["r2", "r3"]
    assert validate_data_dir(sub.path) == []
    np.testing.assert_array_equal(sub.load_audio("0001-c")[0], d.load_audio("0001-c")[0])


def test_corrupt_audio_cli(tmp_path, capsys):
    bad = tmp_path / "x.wav"
    bad.write_bytes(b"\x00garbage" * 50)
    d = write_data_dir(tmp_path / "d", {"s-1": str(bad)}, {"s-1": "s"})
    assert main(["validate-data-dir", d.path]) == 1
    out = capsys.readouterr().out
    assert len(out.splitlines()) == 1 and "wav.scp:1: audio file" in out and "does not open" in out
    assert main(["validate-data-dir", d.path, "--no-check-audio"]) == 0
    shutil.rmtree(d.path)


def test_validate_segments_problems(tmp_path):
    recs = {"r1": flac("0001", "000010011")}
    segs = {"0001-a": ("r1", 0, 1), "0001-b": ("r2", 0, 1)}
    d = write_data_dir(tmp_path / "d", recs, {"0001-a": "0001", "0001-b": "0001", "0001-c": "0001"},
                       segments=segs)
    problems = validate_data_dir(d.path)
    assert len(problems) == 2, problems
    assert "segments:2: recording 'r2' is not in wav.scp" in problems[1]
    assert "utt2spk:3: utterance '0001-c' has no line in segments" in problems[0]
    with pytest.raises(SpkrecError, match=r"segments:2: recording 'r2' is not in .*wav.scp"):
        DataDir(d.path).load_audio("0001-b")


def test_combine_data_dirs_merges_tables_and_rejects_conflicts(tmp_path):
    from spkrec.cli.main import main
    from spkrec.io.datadir import DataDir, combine_data_dirs, write_data_dir
    a = write_data_dir(tmp_path / "a", {"s1-u1": "/x/1.wav", "s1-u2": "/x/2.wav"}, {"s1-u1": "s1", "s1-u2": "s1"},
                       spk2gender={"s1": "f"})
    b = write_data_dir(tmp_path / "b", {"s2-u1": "/y/1.wav"}, {"s2-u1": "s2"}, spk2gender={"s2": "m"})
    (tmp_path / "a" / "feats.scp").write_text("s1-u1 f.ark:1\ns1-u2 f.ark:9\n")  # only in a: dropped
    c = combine_data_dirs(tmp_path / "c", [a, b])
    assert c.utt2spk == {"s1-u1": "s1", "s1-u2": "s1", "s2-u1": "s2"}
    assert c.spk2utt == {"s1": ["s1-u1", "s1-u2"], "s2": ["s2-u1"]}
    assert c.spk2gender == {"s1": "f", "s2": "m"}
    assert not (tmp_path / "c" / "feats.scp").exists()
    bad = write_data_dir(tmp_path / "bad", {"s1-u1": "/z/other.wav"}, {"s1-u1": "s1"})
    assert main(["combine-data-dirs", str(tmp_path / "d"), str(tmp_path / "a"), str(bad.path)]) == 1
    assert DataDir(tmp_path / "c").utts == ["s1-u1", "s1-u2", "s2-u1"]
