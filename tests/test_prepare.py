"""Corpus preparation on the embedded corpora and on small LibriSpeech/VoxCeleb1 layouts built from them."""
import collections
import os
import shutil

import numpy as np
import pytest
import soundfile as sf

from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.io.datadir import DataDir, validate_data_dir
from spkrec.io.prepare import prepare_librispeech, prepare_so762, prepare_timit, prepare_voxceleb1
from spkrec.io.trials import read_trials

DATA = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "data"))
TIMIT = os.path.join(DATA, "timit-sample")
SO762 = os.path.join(DATA, "so762-mini")


def cli_error(capsys, argv):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 1 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    return err


def lower_copy(src, dest):
    """Mirror ``src`` with every path component lower-cased; files are symlinks."""
    for dirpath, _, filenames in os.walk(src):
        rel = os.path.relpath(dirpath, src)
        out = os.path.join(dest, rel.lower()) if rel != "." else dest
        os.makedirs(out, exist_ok=True)
        for name in filenames:
            os.symlink(os.path.join(dirpath, name), os.path.join(out, name.lower()))


def test_timit_sample(tmp_path):
    d = prepare_timit(TIMIT, tmp_path / "timit")
    assert len(d.utt2spk) == 160 and len(d.spk2utt) == 16
    assert all(len(u) == 10 for u in d.spk2utt.values())
    assert collections.Counter(d.spk2gender.values()) == {"f": 8, "m": 8}
    assert d.utt2spk["FVMH0_SA1"] == "FVMH0" and d.spk2gender["FVMH0"] == "f" and d.spk2gender["MCPM0"] == "m"
    assert d.wav_scp["FVMH0_SA1"] == os.path.join(TIMIT, "TIMIT", "TRAIN", "DR1", "FVMH0", "SA1.WAV")
    assert validate_data_dir(d.path) == []
    x, rate = d.load_audio("FVMH0_SA1")
    assert rate == 16000 and x.size > 16000 and np.abs(x).max() > 1000  # int16 scale


def test_timit_any_case_and_src_forms(tmp_path):
    ref = prepare_timit(TIMIT, tmp_path / "ref")
    lower_copy(TIMIT, tmp_path / "lc")
    assert os.path.exists(tmp_path / "lc" / "timit" / "train" / "dr1" / "fvmh0" / "sa1.wav")
    d = prepare_timit(tmp_path / "lc" / "timit", tmp_path / "out")  # the TIMIT folder itself
    assert d.utt2spk == ref.utt2spk and d.spk2gender == ref.spk2gender
    assert [os.path.realpath(p) for p in d.wav_scp.values()] == list(ref.wav_scp.values())
    assert d.wav_scp["FVMH0_SA1"] == str(tmp_path / "lc" / "timit" / "train" / "dr1" / "fvmh0" / "sa1.wav")
    assert validate_data_dir(d.path) == []


def test_timit_gender_from_spkrinfo(tmp_path, caplog):
    src = tmp_path / "src"
    shutil.copytree(TIMIT, src, symlinks=True)
    info = src / "TIMIT" / "DOC" / "SPKRINFO.TXT"
    text = info.read_text(encoding="latin-1")
    assert "\nVMH0  F" in text
    # SPKRINFO wins over the folder's letter
    info.write_text(text.replace("\nVMH0  F", "\nVMH0  M"), encoding="latin-1")
    d = prepare_timit(src, tmp_path / "a")
    assert d.spk2gender["FVMH0"] == "m" and collections.Counter(d.spk2gender.values()) == {"f": 7, "m": 9}
    assert "FVMH0 has Sex M but its folder says F" in caplog.text
    os.remove(info)  # without SPKRINFO: the folder's first letter
    d = prepare_timit(src, tmp_path / "b")
    assert d.spk2gender["FVMH0"] == "f" and collections.Counter(d.spk2gender.values()) == {"f": 8, "m": 8}


def test_timit_sets(tmp_path, capsys):
    assert main(["prepare-data", "timit", TIMIT, str(tmp_path / "tr"), "--sets", "train"]) == 0
    assert len(DataDir(tmp_path / "tr").utt2spk) == 160
    err = cli_error(capsys, ["prepare-data", "timit", TIMIT, str(tmp_path / "te"), "--sets", "test"])
    assert "no TEST folder" in err
    err = cli_error(capsys, ["prepare-data", "timit", str(tmp_path / "nowhere"), str(tmp_path / "x")])
    assert "directory not found" in err
    err = cli_error(capsys, ["prepare-data", "so762", SO762, str(tmp_path / "x"), "--trials", "t.txt"])
    assert "--trials is for voxceleb1 only" in err


def test_so762_mini(tmp_path):
    assert main(["prepare-data", "so762", SO762, str(tmp_path / "so")]) == 0
    d = DataDir(tmp_path / "so")
    assert len(d.utt2spk) == 360 and len(d.spk2utt) == 60
    assert collections.Counter(d.spk2gender.values()) == {"f": 30, "m": 30}
    assert d.utt2spk["0001-000010011"] == "0001" and all(u.startswith(s + "-") for u, s in d.utt2spk.items())
    assert d.wav_scp["0001-000010011"] == os.path.join(SO762, "WAVE", "SPEAKER0001", "000010011.flac")
    assert validate_data_dir(d.path) == []


def test_so762_missing_audio(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("utt2spk", "spk2gender"):
        shutil.copy(os.path.join(SO762, name), src)
    os.symlink(os.path.join(SO762, "WAVE"), src / "WAVE")
    with open(src / "utt2spk", "a") as f:
        f.write("000019999 0001\n")
    err = cli_error(capsys, ["prepare-data", "so762", str(src), str(tmp_path / "x")])
    assert "utt2spk:361: no audio" in err and "SPEAKER0001/000019999.flac" in err


SPEAKERS_TXT = """\
; Some comments here
;ID  |SEX| SUBSET           |MINUTES| NAME
19   | F | train-clean-100  | 25.19 | Kara Shallenberg
60   | M | train-clean-100  | 20.18 | |CBW|Simon
103  | F | dev-clean        | 25.23 | Karen Savage
"""


def _librispeech(root):
    """LibriSpeech root with two subsets (so762 FLACs copied under LibriSpeech names)."""
    layout = {("train-clean-100", "19", "198"): ["000010011", "000010035"],
              ("train-clean-100", "60", "121082"): ["000050003", "000050010", "000050024"],
              ("dev-clean", "103", "1240"): ["000060015"]}
    sources = {}
    for (subset, spk, chapter), utts in layout.items():
        folder = root / subset / spk / chapter
        folder.mkdir(parents=True)
        for i, utt in enumerate(utts):
            src = next(os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(SO762, "WAVE")) for f in fs
                       if f == f"{utt}.flac")
            name = f"{spk}-{chapter}-{i:04d}"
            shutil.copy(src, folder / f"{name}.flac")
            sources[name] = src
        (folder / f"{spk}-{chapter}.trans.txt").write_text("x\n")
    (root / "SPEAKERS.TXT").write_text(SPEAKERS_TXT)
    return sources


def test_librispeech(tmp_path):
    sources = _librispeech(tmp_path / "LibriSpeech")
    d = prepare_librispeech(tmp_path / "LibriSpeech" / "train-clean-100", tmp_path / "tr")
    assert d.utts == ["19-198-0000", "19-198-0001", "60-121082-0000", "60-121082-0001", "60-121082-0002"]
    assert d.spk2gender == {"19": "f", "60": "m"}
    assert validate_data_dir(d.path) == []
    x, _ = d.load_audio("60-121082-0001")
    np.testing.assert_array_equal(x, sf.read(sources["60-121082-0001"], dtype="float32")[0] * 32768)
    assert main(["prepare-data", "librispeech", str(tmp_path / "LibriSpeech"), str(tmp_path / "all")]) == 0
    d = DataDir(tmp_path / "all")
    assert len(d.utts) == 6 and d.spk2gender["103"] == "f" and d.utt2spk["103-1240-0000"] == "103"
    os.remove(tmp_path / "LibriSpeech" / "SPEAKERS.TXT")
    assert prepare_librispeech(tmp_path / "LibriSpeech", tmp_path / "nog").spk2gender is None


def _voxceleb(root):
    """wav/<id>/<video>/<n>.wav converted from so762 FLACs (16-bit PCM WAV)."""
    layout = {"id10001": {"1zcIwhmdeo4": ["000010011", "000010035"], "-7Rk_Vx2c-M": ["000010053"]},
              "id10002": {"C7k7C-PDvAA": ["000050003", "000050010"]}}
    for spk, videos in layout.items():
        spk_num = "0001" if spk == "id10001" else "0005"
        for video, utts in videos.items():
            folder = root / "wav" / spk / video
            folder.mkdir(parents=True)
            for i, utt in enumerate(utts, 1):
                source = os.path.join(SO762, "WAVE", f"SPEAKER{spk_num}", f"{utt}.flac")
                x, rate = sf.read(source, dtype="int16")
                sf.write(folder / f"{i:05d}.wav", x, rate, subtype="PCM_16")


def test_voxceleb1(tmp_path, capsys):
    _voxceleb(tmp_path / "vox1")
    official = tmp_path / "veri_test.txt"
    official.write_text("1 id10001/1zcIwhmdeo4/00001.wav id10001/-7Rk_Vx2c-M/00001.wav\n"
                        "0 id10001/1zcIwhmdeo4/00001.wav id10002/C7k7C-PDvAA/00002.wav\n"
                        "1 id10002/C7k7C-PDvAA/00001.wav id10002/C7k7C-PDvAA/00002.wav\n")
    assert main(["prepare-data", "voxceleb1", str(tmp_path / "vox1"), str(tmp_path / "d"),
                 "--trials", str(official)]) == 0
    d = DataDir(tmp_path / "d")
    assert d.utts == ["id10001--7Rk_Vx2c-M-00001", "id10001-1zcIwhmdeo4-00001", "id10001-1zcIwhmdeo4-00002",
                      "id10002-C7k7C-PDvAA-00001", "id10002-C7k7C-PDvAA-00002"]
    assert d.spk2utt["id10002"] == ["id10002-C7k7C-PDvAA-00001", "id10002-C7k7C-PDvAA-00002"]
    assert validate_data_dir(d.path) == []
    assert read_trials(tmp_path / "d" / "trials") == [
        ("id10001-1zcIwhmdeo4-00001", "id10001--7Rk_Vx2c-M-00001", True),
        ("id10001-1zcIwhmdeo4-00001", "id10002-C7k7C-PDvAA-00002", False),
        ("id10002-C7k7C-PDvAA-00001", "id10002-C7k7C-PDvAA-00002", True)]
    x, rate = d.load_audio("id10001--7Rk_Vx2c-M-00001")
    ref = sf.read(os.path.join(SO762, "WAVE", "SPEAKER0001", "000010053.flac"), dtype="float32")[0]
    assert rate == 16000
    np.testing.assert_array_equal(x, ref * 32768)
    # the wav/ folder itself also works; without --trials no trials file is written
    prepare_voxceleb1(tmp_path / "vox1" / "wav", tmp_path / "d2")
    assert DataDir(tmp_path / "d2").utts == d.utts and not (tmp_path / "d2" / "trials").exists()


@pytest.mark.parametrize("line, match", [
    ("1 id10001/1zcIwhmdeo4/00009.wav id10001/-7Rk_Vx2c-M/00001.wav",
     r"veri.txt:2: id10001/1zcIwhmdeo4/00009.wav is not in"),
    ("2 id10001/1zcIwhmdeo4/00001.wav id10001/-7Rk_Vx2c-M/00001.wav", r"veri.txt:2: expected '<1\|0>"),
    ("1 id10001/1zcIwhmdeo4/00001.wav", r"veri.txt:2: expected '<1\|0>"),
    ("1 id10001-00001.wav id10001/-7Rk_Vx2c-M/00001.wav",
     r"veri.txt:2: 'id10001-00001.wav' is not <id>/<video>/<n>.wav"),
])
def test_voxceleb1_bad_trials(tmp_path, capsys, line, match):
    _voxceleb(tmp_path / "vox1")
    first = "1 id10001/1zcIwhmdeo4/00001.wav id10001/-7Rk_Vx2c-M/00001.wav\n"
    (tmp_path / "veri.txt").write_text(first + line + "\n")
    with pytest.raises(SpkrecError, match=match):
        prepare_voxceleb1(tmp_path / "vox1", tmp_path / "d", tmp_path / "veri.txt")
    assert not (tmp_path / "d" / "trials").exists()
    cli_error(capsys, ["prepare-data", "voxceleb1", str(tmp_path / "vox1"), str(tmp_path / "d"),
                       "--trials", str(tmp_path / "veri.txt")])


def test_so762_prepare_function(tmp_path):
    d = prepare_so762(SO762, tmp_path / "so")
    assert d.spk2gender["0006"] == "f" and len(d.spk2utt["0006"]) == 6
