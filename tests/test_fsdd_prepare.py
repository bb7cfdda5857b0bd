"""`spkrec prepare-data fsdd` on a small corpus in the FSDD layout (WAVE/<spk>/<utt>.flac, utt2spk, text)."""
import numpy as np
import soundfile as sf

from spkrec.cli.main import main
from spkrec.io.datadir import DataDir, read_table


def _corpus(root, skip_text=None):
    rows = [(f"{spk}_{d}_{i:02d}", spk, word) for spk in ("amy", "bob") for d, word in ((0, "zero"), (1, "one"))
            for i in range(2)]
    for utt, spk, _ in rows:
        (root / "WAVE" / spk).mkdir(parents=True, exist_ok=True)
        sf.write(root / "WAVE" / spk / f"{utt}.flac", np.zeros(800, np.int16), 8000)
    (root / "utt2spk").write_text("".join(f"{u} {s}\n" for u, s, _ in rows))
    (root / "text").write_text("".join(f"{u} {w}\n" for u, _, w in rows if u != skip_text))
    (root / "spk2gender").write_text("amy f\nbob m\n")
    return rows


def test_prepare_fsdd_writes_text_and_tables(tmp_path):
    rows = _corpus(tmp_path / "fsdd")
    assert main(["prepare-data", "fsdd", str(tmp_path / "fsdd"), str(tmp_path / "data")]) == 0
    data = DataDir(str(tmp_path / "data"))
    assert data.utt2spk == {u: s for u, s, _ in rows}
    assert read_table(data.file("text")) == {u: w for u, _, w in rows}
    assert data.wav_scp["bob_1_01"].endswith("WAVE/bob/bob_1_01.flac")
    assert data.spk2gender == {"amy": "f", "bob": "m"}
    assert main(["validate-data-dir", str(tmp_path / "data")]) == 0


def test_prepare_fsdd_missing_phrase_is_one_line(tmp_path, capsys):
    _corpus(tmp_path / "fsdd", skip_text="amy_1_00")
    assert main(["prepare-data", "fsdd", str(tmp_path / "fsdd"), str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no phrase for utterance 'amy_1_00'" in err[0]
