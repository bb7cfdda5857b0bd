"""Simulated attacks on real speech (data/so762-mini): length, rate, seeded reproducibility, and the
data dir written by ``spkrec simulate-spoofs``."""
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.signal

from spkrec.errors import SpkrecError
from spkrec.io.audio import read_audio
from spkrec.spoof.simulate import ATTACKS, griffin_lim, parse_attacks, utterance_seed

CORPUS = Path(__file__).resolve().parents[1] / "data" / "so762-mini"
FLAC = CORPUS / "WAVE" / "SPEAKER0001" / "000010011.flac"


def _needs(attack):
    module = {"world": "pyworld", "replay": "pyroomacoustics"}.get(attack)
    if module:
        pytest.importorskip(module)


@pytest.fixture(scope="module")
def speech():
    x, rate = read_audio(str(FLAC))
    return x[: 2 * rate], rate  # 2 s


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_length_seed_and_change(speech, attack):
    _needs(attack)
    x, rate = speech
    y = ATTACKS[attack](x, rate, 7)
    assert y.shape == x.shape and y.dtype == np.float32 and np.all(np.isfinite(y))
    np.testing.assert_array_equal(y, ATTACKS[attack](x, rate, 7))  # seeded
    assert np.max(np.abs(y)) <= 32768
    # the attack keeps the speech (level within 6 dB) but changes the waveform
    ratio = np.sqrt(np.mean(y.astype(float) ** 2) / np.mean(x.astype(float) ** 2))
    assert 0.5 < ratio < 2.0
    assert np.corrcoef(x, y)[0, 1] < 0.95 or attack == "replay"
    assert not np.allclose(x, y, atol=100)


def test_griffin_lim_keeps_magnitude_changes_phase(speech):
    x, rate = speech
    y = griffin_lim(x, rate, 0, power=1.0)
    _, _, sx = scipy.signal.stft(x, nperseg=800, noverlap=600)
    _, _, sy = scipy.signal.stft(y, nperseg=800, noverlap=600)
    mag_err = np.linalg.norm(np.abs(sy) - np.abs(sx)) / np.linalg.norm(np.abs(sx))
    assert mag_err < 0.5  # spectrogram consistent (Griffin-Lim's own residual)
    assert not np.array_equal(y, griffin_lim(x, rate, 1, power=1.0))  # the random initial phase depends on the seed
    # Tacotron's sharpening (power 1.2) deepens the spectral valleys: the weak high band loses energy
    f, px = scipy.signal.welch(x, rate, nperseg=512)
    _, py = scipy.signal.welch(griffin_lim(x, rate, 0), rate, nperseg=512)
    _, p1 = scipy.signal.welch(y, rate, nperseg=512)
    high = f > 5000
    tilt = lambda p: 10 * np.log10(p[high].sum() / p.sum())
    assert abs(tilt(p1) - tilt(px)) < 1.5 and tilt(py) < tilt(px) - 2.0


def test_replay_loudspeaker_room_and_level(speech):
    pytest.importorskip("pyroomacoustics")
    x, rate = speech
    ys = [ATTACKS["replay"](x, rate, seed) for seed in range(4)]
    f, px = scipy.signal.welch(x, rate, nperseg=1024)
    low = f < 80
    for y in ys:
        _, py = scipy.signal.welch(y, rate, nperseg=1024)
        # below the loudspeaker's high-pass (120-300 Hz) little but noise remains
        assert py[low].sum() / py.sum() < 0.5 * px[low].sum() / px.sum() + 1e-3
        ratio_db = 10 * np.log10(np.mean(y.astype(float) ** 2) / np.mean(x.astype(float) ** 2))
        assert -6.5 < ratio_db < 6.5  # the seeded playback gain
    # the room: energy persists after the signal ends (reverberation tail) unlike the dry input
    burst = np.zeros(rate, np.float32)
    burst[:800] = x[rate // 2: rate // 2 + 800]
    y = ATTACKS["replay"](burst, rate, 0)
    tail = slice(1000, 3000)  # 38-160 ms after the burst
    assert np.mean(y[tail].astype(float) ** 2) > 30 * np.mean(y[6000:].astype(float) ** 2)
    assert len({float(np.sum(y ** 2)) for y in ys}) == 4  # each seed its own loudspeaker and room


def test_seeds_and_names():
    assert utterance_seed(0, "replay", "u1") == utterance_seed(0, "replay", "u1")
    assert utterance_seed(0, "replay", "u1") != utterance_seed(1, "replay", "u1")
    assert parse_attacks(" griffin_lim, replay ") == ["griffin_lim", "replay"]
    with pytest.raises(SpkrecError, match="unknown attack"):
        parse_attacks("griffin_lim,tts")
    with pytest.raises(SpkrecError, match="no attacks"):
        parse_attacks(",")


def test_simulate_spoofs_cli(tmp_path, capsys):
    from spkrec.cli.main import main
    from spkrec.io.datadir import DataDir, write_data_dir
    wav = {"0001-a": str(FLAC), "0001-b": str(CORPUS / "WAVE" / "SPEAKER0001" / "000010035.flac")}
    write_data_dir(tmp_path / "bona", wav, {u: "0001" for u in wav})
    assert main(["simulate-spoofs", "--attacks", "griffin_lim", str(tmp_path / "bona"), str(tmp_path / "sp")]) == 0
    out = DataDir(tmp_path / "sp")
    lines = (tmp_path / "sp" / "utt2attack").read_text().split("\n")
    assert lines[:4] == ["0001-a bonafide", "0001-a-griffin_lim griffin_lim", "0001-b bonafide",
                         "0001-b-griffin_lim griffin_lim"]
    for utt in out.utts:
        y, rate = out.load_audio(utt)
        x, _ = read_audio(wav[utt.replace("-griffin_lim", "")])
        assert rate == 16000 and y.shape == x.shape
    first = (tmp_path / "sp" / "wav" / "griffin_lim" / "0001-a-griffin_lim.wav").read_bytes()
    shutil.rmtree(tmp_path / "sp")
    assert main(["simulate-spoofs", "--attacks", "griffin_lim", str(tmp_path / "bona"), str(tmp_path / "sp")]) == 0
    assert (tmp_path / "sp" / "wav" / "griffin_lim" / "0001-a-griffin_lim.wav").read_bytes() == first
    capsys.readouterr()
    assert main(["simulate-spoofs", "--attacks", "vc", str(tmp_path / "bona"), str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown attack 'vc'" in err[0]
    assert not os.path.exists(tmp_path / "x" / "wav.scp")
