"""End to end: ``spkrec compute-feats`` / ``compute-vad`` on real speech, ark/scp I/O, FeatureLoader."""
import os
import pickle
from pathlib import Path

import kaldiio
import numpy as np
import pytest
import soundfile as sf

from spkrec.cli.main import main
from spkrec.errors import SpkrecError
from spkrec.features import cmvn, deltas, mfcc, sliding_cmvn, vad_energy
from spkrec.features.pipeline import FeatureLoader
from spkrec.io.audio import read_audio
from spkrec.io.kaldi_io import matrix_shape, read_scp, read_vectors, write_matrices, write_vectors

CORPUS = Path(__file__).resolve().parents[1] / "data" / "so762-mini"
NUM_UTTS = 10


def _make_data_dir(path, num_utts=NUM_UTTS, wav_override=None):
    path.mkdir(parents=True, exist_ok=True)
    lines = (CORPUS / "utt2spk").read_text().split("\n")
    pairs = [line.split() for line in lines if line.strip()][:num_utts]
    wav, u2s = [], []
    for utt, spk in pairs:
        key = f"{spk}-{utt}"
        audio = (wav_override or {}).get(key, CORPUS / "WAVE" / f"SPEAKER{spk}" / f"{utt}.flac")
        wav.append(f"{key} {audio}")
        u2s.append(f"{key} {spk}")
    (path / "wav.scp").write_text("".join(line + "\n" for line in sorted(wav)))
    (path / "utt2spk").write_text("".join(line + "\n" for line in sorted(u2s)))
    return path


def _run(*argv):
    return main([str(a) for a in argv])


def _ark_bytes(feat_dir):
    return {p.name: p.read_bytes() for p in sorted(Path(feat_dir).glob("*.ark"))}


@pytest.fixture(scope="module")
def computed(tmp_path_factory):
    """One data dir with MFCCs (nj=1, 4 chunks) and VAD, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("feats")
    data = _make_data_dir(root / "data" / "train")
    assert _run("compute-feats", "--utts-per-chunk", 3, data, root / "mfcc") == 0
    assert _run("compute-vad", data) == 0
    return root, data


def test_feats_scp_readable_by_kaldiio_and_equal_to_direct_mfcc(computed):
    root, data = computed
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    keys = [line.split()[0] for line in (data / "wav.scp").read_text().splitlines()]
    assert list(feats.keys()) == keys
    wavs = dict(line.split(None, 1) for line in (data / "wav.scp").read_text().splitlines())
    num_frames = dict(line.split() for line in (data / "utt2num_frames").read_text().splitlines())
    for utt in keys:
        signal, rate = read_audio(wavs[utt])
        want = mfcc(signal, rate)
        got = feats[utt]
        assert got.dtype == np.float32 and got.shape == want.shape == (int(num_frames[utt]), 13)
        np.testing.assert_array_equal(got, want)
    assert sorted(p.name for p in (root / "mfcc").glob("*.ark")) == [f"raw_mfcc_train.{n}.ark" for n in (1, 2, 3, 4)]


def test_nj2_gives_identical_arks_and_resume_recomputes_only_missing_chunk(computed, tmp_path):
    root, _ = computed
    data = _make_data_dir(tmp_path / "train")
    assert _run("compute-feats", "--utts-per-chunk", 3, "--nj", 2, data, tmp_path / "mfcc") == 0
    assert _ark_bytes(tmp_path / "mfcc") == _ark_bytes(root / "mfcc")
    feats_scp = (data / "feats.scp").read_text()

    chunk2 = tmp_path / "mfcc" / "raw_mfcc_train.2.ark"
    others = {p: p.stat().st_mtime_ns for p in (tmp_path / "mfcc").glob("*.ark") if p != chunk2}
    chunk2.unlink()
    (data / "feats.scp").unlink()
    assert _run("compute-feats", "--utts-per-chunk", 3, data, tmp_path / "mfcc") == 0
    assert chunk2.exists()
    assert {p: p.stat().st_mtime_ns for p in others} == others  # complete chunks were not rewritten
    assert _ark_bytes(tmp_path / "mfcc") == _ark_bytes(root / "mfcc")
    assert (data / "feats.scp").read_text() == feats_scp

    # a truncated ark (killed writer without atomic rename) is detected and recomputed
    chunk3 = tmp_path / "mfcc" / "raw_mfcc_train.3.ark"
    chunk3.write_bytes(chunk3.read_bytes()[:-10])
    assert _run("compute-feats", "--utts-per-chunk", 3, data, tmp_path / "mfcc") == 0
    assert _ark_bytes(tmp_path / "mfcc") == _ark_bytes(root / "mfcc")


def test_config_file_and_command_line_overrides(tmp_path):
    data = _make_data_dir(tmp_path / "d", num_utts=2)
    conf = tmp_path / "mfcc.conf"
    conf.write_text("# test\n--num-ceps=20\n--num-mel-bins=30\n--dither=0\n")
    assert _run("compute-feats", "--config", conf, data, tmp_path / "f") == 0
    first = next(iter(kaldiio.load_scp(str(data / "feats.scp")).values()))
    assert first.shape[1] == 20
    assert _run("compute-feats", "--config", conf, "--num-ceps=15", "--use-energy=false", data, tmp_path / "f") == 0
    items = list(kaldiio.load_scp(str(data / "feats.scp")).items())
    utt, got = items[0]
    wav = dict(line.split(None, 1) for line in (data / "wav.scp").read_text().splitlines())[utt]
    signal, rate = read_audio(wav)
    want = mfcc(signal, rate, num_ceps=15, num_mel_bins=30, dither=0.0, use_energy=False)
    np.testing.assert_array_equal(got, want)  # changed options recomputed the chunk


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1
    last = err[-1]
    assert "Traceback" not in "\n".join(err)
    return last


def test_malformed_config_line_is_a_clean_error(tmp_path, capsys):
    data = _make_data_dir(tmp_path / "d", num_utts=1)
    conf = tmp_path / "bad.conf"
    conf.write_text("--num-ceps=20\nnum-mel-bins 30\n")
    assert _run("compute-feats", "--config", conf, data, tmp_path / "f") == 1
    assert f"{conf}:2: " in _error_line(capsys)
    assert not (data / "feats.scp").exists()


def test_unknown_option_is_a_clean_error(tmp_path, capsys):
    data = _make_data_dir(tmp_path / "d", num_utts=1)
    assert _run("compute-feats", "--num-cepz=20", data, tmp_path / "f") == 1
    assert "num_cepz" in _error_line(capsys) or "num-cepz" in capsys.readouterr().err
    assert _run("compute-feats", "--feat-type", "lpc", "--num-mel-bins=20", data, tmp_path / "f") == 1
    assert "num" in _error_line(capsys)


def test_missing_audio_names_wav_scp_line(tmp_path, capsys):
    data = _make_data_dir(tmp_path / "d", num_utts=4)
    lines = (data / "wav.scp").read_text().splitlines()
    key = lines[2].split()[0]
    data = _make_data_dir(tmp_path / "d", num_utts=4, wav_override={key: tmp_path / "gone.flac"})
    assert _run("compute-feats", "--nj", 2, "--utts-per-chunk", 1, data, tmp_path / "f") == 1
    line = _error_line(capsys)
    assert f"{data / 'wav.scp'}:3: " in line and "gone.flac" in line
    assert not (data / "feats.scp").exists()


def test_other_sample_rate_needs_sample_frequency(tmp_path, capsys):
    src = next((CORPUS / "WAVE").glob("SPEAKER*/*.flac"))
    audio, rate = sf.read(src, dtype="int16")
    assert rate == 16000
    low = tmp_path / "low.wav"
    sf.write(low, audio[::2], 8000, subtype="PCM_16")
    data = _make_data_dir(tmp_path / "d", num_utts=2)
    key = (data / "wav.scp").read_text().splitlines()[1].split()[0]
    data = _make_data_dir(tmp_path / "d", num_utts=2, wav_override={key: low})
    assert _run("compute-feats", data, tmp_path / "f") == 1
    line = _error_line(capsys)
    assert f"{data / 'wav.scp'}:2: " in line and "8000 Hz" in line and "--sample-frequency" in line
    assert _run("compute-feats", "--sample-frequency", 16000, data, tmp_path / "f") == 0
    assert kaldiio.load_scp(str(data / "feats.scp"))[key].shape[0] > 0
    assert _run("compute-feats", "--sample-frequency=8000", "--feat-type", "fbank", data, tmp_path / "f8") == 0


def test_vad_scp_matches_direct_vad(computed):
    _, data = computed
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    vad = kaldiio.load_scp(str(data / "vad.scp"))
    assert list(vad.keys()) == list(feats.keys())
    fractions = []
    for utt in feats:
        v = vad[utt]
        assert v.ndim == 1 and v.dtype == np.float32
        np.testing.assert_array_equal(v, vad_energy(feats[utt]))
        fractions.append(v.mean())
    assert 0.3 < np.mean(fractions) < 0.98  # real speech: mostly voiced, some silence
    assert (data / "vad").is_dir()


def test_compute_vad_options_and_warning(computed, tmp_path, capsys, caplog):
    _, data = computed
    conf = tmp_path / "vad.conf"
    conf.write_text("--vad-energy-threshold=5.5\n--vad-energy-mean-scale=0.5\n--vad-frames-context=2\n")
    assert _run("compute-vad", "--config", conf, "--vad-proportion-threshold", 0.12, data, tmp_path / "vad") == 0
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    vad = kaldiio.load_scp(str(data / "vad.scp"))
    for utt in feats:
        want = vad_energy(feats[utt], energy_threshold=5.5, frames_context=2, proportion_threshold=0.12)
        np.testing.assert_array_equal(vad[utt], want)
    capsys.readouterr()
    caplog.clear()
    assert _run("compute-vad", "--vad-energy-threshold=1000", data, tmp_path / "vad2") == 1
    assert "no utterance has a voiced frame" in _error_line(capsys)
    assert sum("has no voiced frames" in r.getMessage() for r in caplog.records) == NUM_UTTS
    with pytest.raises(SystemExit):  # argparse type error
        _run("compute-vad", "--vad-energy-threshold=x", data, tmp_path / "vad3")
    assert _run("compute-vad", "--num-ceps=3", data, tmp_path / "vad3") == 1
    assert _run("compute-vad", data) == 0  # restore default vad.scp for other tests


def test_feature_loader_pipeline(computed):
    _, data = computed
    loader = FeatureLoader(data / "feats.scp", data / "vad.scp")
    raw = kaldiio.load_scp(str(data / "feats.scp"))
    vad = kaldiio.load_scp(str(data / "vad.scp"))
    assert loader.utt_ids == list(raw.keys()) and loader.dim == 39 and len(loader) == NUM_UTTS
    utt = loader.utt_ids[3]
    want = sliding_cmvn(deltas(raw[utt], order=2), window=300, center=True)[vad[utt] > 0.5]
    got = loader(utt)
    assert got.dtype == np.float32 and got.shape == (int(vad[utt].sum()), 39)
    np.testing.assert_allclose(got, want, atol=1e-6)
    clone = pickle.loads(pickle.dumps(loader))
    np.testing.assert_array_equal(clone(utt), got)
    plain = FeatureLoader(data / "feats.scp", deltas_order=0, cmvn="utterance")
    np.testing.assert_allclose(plain(utt), cmvn(raw[utt]), atol=1e-6)
    assert plain.dim == 13
    warped = FeatureLoader(data / "feats.scp", deltas_order=1, cmvn="warp")(utt)
    assert warped.shape == (raw[utt].shape[0], 26) and abs(float(warped.mean())) < 0.1
    with pytest.raises(SpkrecError, match="not found"):
        loader("no-such-utt")
    with pytest.raises(SpkrecError, match="cmvn"):
        FeatureLoader(data / "feats.scp", cmvn="bogus")


def test_feature_loader_no_voiced_frames(computed, tmp_path):
    _, data = computed
    feats = read_scp(data / "feats.scp")
    utt = next(iter(feats))
    write_vectors(tmp_path / "v.ark", tmp_path / "v.scp",
                  [(u, np.zeros(matrix_shape(rx)[0], np.float32)) for u, rx in feats.items()])
    with pytest.raises(SpkrecError, match=f"{utt}.*no voiced frames"):
        FeatureLoader(data / "feats.scp", tmp_path / "v.scp")(utt)


def test_kaldi_io_roundtrip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    mats = {f"u{i}": rng.normal(size=(5 + i, 4)).astype(np.float32) for i in range(3)}
    assert write_matrices(tmp_path / "m.ark", tmp_path / "m.scp", mats.items()) == 3
    loaded = kaldiio.load_scp(str(tmp_path / "m.scp"))
    for k, v in mats.items():
        np.testing.assert_array_equal(loaded[k], v)
        assert matrix_shape(read_scp(tmp_path / "m.scp")[k]) == v.shape
    vecs = [("spkA", np.arange(4.0)), ("spkB", -np.ones(4))]
    write_vectors(tmp_path / "v.ark", tmp_path / "v.scp", vecs)
    keys, arr = read_vectors(tmp_path / "v.scp")
    assert keys == ["spkA", "spkB"] and arr.dtype == np.float32
    np.testing.assert_array_equal(arr, np.stack([v for _, v in vecs]))
    with kaldiio.WriteHelper(f"ark,scp:{tmp_path / 'k.ark'},{tmp_path / 'k.scp'}") as w:  # written by kaldiio
        w("x", np.ones(3, dtype=np.float32))
    assert read_vectors(tmp_path / "k.scp")[0] == ["x"]
    (tmp_path / "bad.scp").write_text("a /x.ark:1\nb\n")
    with pytest.raises(SpkrecError, match=r"bad\.scp:2: "):
        read_scp(tmp_path / "bad.scp")
    write_vectors(tmp_path / "w.ark", tmp_path / "w.scp", [("a", np.ones(3)), ("b", np.ones(4))])
    with pytest.raises(SpkrecError, match=r"w\.scp:2: .*dimension"):
        read_vectors(tmp_path / "w.scp")
    with pytest.raises(SpkrecError, match="duplicate"):
        write_vectors(tmp_path / "d.ark", tmp_path / "d.scp", [("a", np.ones(3)), ("a", np.ones(3))])
    assert not (tmp_path / "d.ark").exists() and not (tmp_path / "d.scp").exists()
    (tmp_path / "gone.scp").write_text(f"a {tmp_path / 'gone.ark'}:5\n")
    with pytest.raises(SpkrecError, match=r"gone\.scp:1: cannot read"):
        read_vectors(tmp_path / "gone.scp")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("feat_type", ["fbank", "lpc", "lpcc", "plp", "rasta-plp"])
def test_other_feature_types(tmp_path, feat_type):
    from spkrec.features.config import feature_function
    try:
        func = feature_function(feat_type)
    except (ImportError, AttributeError):
        pytest.skip(f"{feat_type} is not implemented yet")
    data = _make_data_dir(tmp_path / "d", num_utts=2)
    assert _run("compute-feats", "--feat-type", feat_type, data, tmp_path / "f") == 0
    feats = kaldiio.load_scp(str(data / "feats.scp"))
    wav = dict(line.split(None, 1) for line in (data / "wav.scp").read_text().splitlines())
    for utt, got in feats.items():
        signal, rate = read_audio(wav[utt])
        np.testing.assert_array_equal(got, np.asarray(func(signal, rate), dtype=np.float32))
    assert sorted(p.name for p in (tmp_path / "f").glob("*.ark")) == [f"raw_{feat_type.replace('-', '_')}_d.1.ark"]
