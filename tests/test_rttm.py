"""RTTM / UEM reading and writing: round trip, the md-eval field layout, one-line errors."""
import pytest

from spkrec.errors import SpkrecError
from spkrec.io.rttm import Turn, read_rttm, read_uem, write_rttm, write_uem


def test_rttm_round_trip(tmp_path):
    turns = {"conv1": [Turn(0.0, 1.5, "A"), Turn(1.25, 3.0, "B")], "conv2": [Turn(2.0, 2.5, "spk_7")]}
    path = tmp_path / "x.rttm"
    write_rttm(path, turns)
    lines = path.read_text().splitlines()
    assert lines[0] == "SPEAKER conv1 1 0.000 1.500 <NA> <NA> A <NA> <NA>"
    assert len(lines) == 3
    assert read_rttm(path) == turns


def test_rttm_skips_comments_and_other_types(tmp_path):
    path = tmp_path / "x.rttm"
    path.write_text(";; comment\n\nSPKR-INFO f 1 <NA> <NA> <NA> unknown A <NA> <NA>\n"
                    "SPEAKER f 1 3.5 1.0 <NA> <NA> B <NA> <NA>\nSPEAKER f 1 0.5 2 <NA> <NA> A <NA> <NA>\n")
    assert read_rttm(path) == {"f": [Turn(0.5, 2.5, "A"), Turn(3.5, 4.5, "B")]}


@pytest.mark.parametrize("line, what", [
    ("SPEAKER f 1 abc 1.0 <NA> <NA> A <NA> <NA>", "onset"),
    ("SPEAKER f 1 0.0 -1 <NA> <NA> A <NA> <NA>", "duration"),
    ("SPEAKER f 1 0.0", "fields"),
    ("SPEECH f 1 0 1 <NA> <NA> A <NA> <NA>", "line type"),
])
def test_rttm_bad_line_names_file_and_line(tmp_path, line, what):
    path = tmp_path / "bad.rttm"
    path.write_text("SPEAKER f 1 0.0 1.0 <NA> <NA> A <NA> <NA>\n" + line + "\n")
    with pytest.raises(SpkrecError, match=rf"bad.rttm:2: .*{what}") as err:
        read_rttm(path)
    assert "\n" not in str(err.value)


def test_uem_round_trip_and_errors(tmp_path):
    path = tmp_path / "x.uem"
    write_uem(path, {"f": [(0.0, 10.0), (12.0, 20.5)]})
    assert path.read_text().splitlines()[1] == "f 1 12.000 20.500"
    assert read_uem(path) == {"f": [(0.0, 10.0), (12.0, 20.5)]}
    path.write_text("f 1 5 4\n")
    with pytest.raises(SpkrecError, match="x.uem:1: offset"):
        read_uem(path)
    path.write_text("f 1 5\n")
    with pytest.raises(SpkrecError, match="x.uem:1: 3 fields"):
        read_uem(path)


def test_missing_file_and_bad_names(tmp_path):
    with pytest.raises(SpkrecError, match="no such file"):
        read_rttm(tmp_path / "none.rttm")
    with pytest.raises(SpkrecError, match="white space"):
        write_rttm(tmp_path / "y.rttm", {"a b": [(0, 1, "A")]})
