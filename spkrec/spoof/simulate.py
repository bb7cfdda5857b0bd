"""Simulated spoofing attacks: ``f(signal, rate, seed) -> signal`` of the same length and rate.

Signals are float arrays in int16 scale (as ``spkrec.io.read_audio`` returns them). Every attack is
deterministic for a given ``seed``.

- ``griffin_lim``: the Griffin-Lim vocoder of Tacotron (Wang et al., 2017): STFT magnitude of 50 ms
  Hann frames every 12.5 ms, sharpened by the power 1.2 the paper uses before Griffin-Lim, 60
  iterations (``librosa.griffinlim``) from a seeded random phase, scaled to the input RMS.
- ``mel_griffin_lim``: Griffin-Lim (512-point Hann, hop 128, 32 iterations, no sharpening) from an 80-band mel spectrogram (magnitude recovered by non-negative
  least squares, ``librosa.feature.inverse.mel_to_stft``): a mel-domain TTS front end with a
  Griffin-Lim vocoder; loses the harmonic detail between mel bands.
- ``world``: WORLD copy-synthesis (``pyworld``: DIO + StoneMask F0, CheapTrick envelope, D4C
  aperiodicity, 5 ms frames, resynthesised): the analysis-synthesis of a statistical-parametric TTS/VC
  vocoder. Needs the ``[spoof]`` extra.
- ``replay``: playback through a loudspeaker (amplifier ``tanh`` soft clip; 2nd-order high-pass at
  120-300 Hz, 1st-order low-pass at 6-7.2 kHz, three +-1-4 dB resonances between 300 Hz and 5 kHz), a
  shoebox room (``pyroomacoustics`` image method, 3-7 x 3-5 x 2.4-3.2 m, wall absorption from a
  seeded RT60 of 0.1-0.4 s by Sabine's formula, loudspeaker-microphone 0.2-1 m), a re-recording
  device (1st-order high-pass at 50-150 Hz) and pink ambient noise at 35-50 dB SNR; level: the input
  RMS times a playback gain within +-6 dB. All drawn per utterance from the seed. Needs the ``[spoof]``
  extra.
"""
import zlib

import numpy as np

from spkrec.errors import SpkrecError

BONAFIDE = "bonafide"


def utterance_seed(seed, attack, utt):
    """A 32-bit seed from the run seed, attack name and utterance id (stable across runs and machines)."""
    return zlib.crc32(f"{int(seed)}/{attack}/{utt}".encode("utf-8"))


def _fit_length(y, n):
    y = np.asarray(y, dtype=np.float64)
    return y[:n] if y.size >= n else np.pad(y, (0, n - y.size))


def griffin_lim(signal, rate, seed=0, frame_ms=50.0, hop_ms=12.5, power=1.2, n_iter=60):
    """Griffin-Lim vocoder as in Tacotron (see module docstring): STFT magnitude of ``frame_ms`` Hann
    frames every ``hop_ms``, sharpened by ``power``, ``n_iter`` Griffin-Lim iterations from a seeded
    random phase, scaled back to the input RMS."""
    import librosa
    x = np.asarray(signal, dtype=np.float64) / 32768.0
    n_fft, hop = int(round(rate * frame_ms / 1000.0)), int(round(rate * hop_ms / 1000.0))
    mag = np.abs(librosa.stft(x, n_fft=n_fft, hop_length=hop)) ** float(power)
    y = librosa.griffinlim(mag, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=x.size, init="random",
                           random_state=np.random.RandomState(seed % 2 ** 32))
    y = _fit_length(y, x.size)
    y *= np.sqrt(np.mean(x ** 2) / (np.mean(y ** 2) + 1e-20))
    return (y * 32768.0).astype(np.float32)


def mel_griffin_lim(signal, rate, seed=0, n_fft=512, hop=128, n_mels=80, n_iter=32):
    """Griffin-Lim from an ``n_mels``-band mel spectrogram (the output of a mel-domain TTS acoustic
    model): mel power -> linear magnitude by non-negative least squares
    (``librosa.feature.inverse.mel_to_stft``) -> ``n_iter`` Griffin-Lim iterations from a seeded phase."""
    import librosa
    x = np.asarray(signal, dtype=np.float64) / 32768.0
    mel = librosa.feature.melspectrogram(y=x, sr=rate, n_fft=n_fft, hop_length=hop, n_mels=n_mels, power=1.0)
    mag = librosa.feature.inverse.mel_to_stft(mel, sr=rate, n_fft=n_fft, power=1.0)
    y = librosa.griffinlim(mag, n_iter=n_iter, hop_length=hop, n_fft=n_fft, length=x.size, init="random",
                           random_state=np.random.RandomState(seed % 2 ** 32))
    y = _fit_length(y, x.size)
    y *= np.sqrt(np.mean(x ** 2) / (np.mean(y ** 2) + 1e-20))
    return (y * 32768.0).astype(np.float32)


def world(signal, rate, seed=0, frame_period_ms=5.0):
    """WORLD vocoder copy-synthesis (see module docstring); ``seed`` is unused (WORLD is deterministic)."""
    pyworld = _require("pyworld")
    x = np.ascontiguousarray(signal, dtype=np.float64)
    f0, t = pyworld.dio(x, rate, frame_period=frame_period_ms)
    f0 = pyworld.stonemask(x, f0, t, rate)
    sp = pyworld.cheaptrick(x, f0, t, rate)
    ap = pyworld.d4c(x, f0, t, rate)
    y = pyworld.synthesize(f0, sp, ap, rate, frame_period_ms)
    return _fit_length(y, x.size).astype(np.float32)


def _peaking(f0, gain_db, q, rate):
    """RBJ audio-EQ-cookbook peaking filter (b, a)."""
    amp, w0 = 10 ** (gain_db / 40.0), 2 * np.pi * f0 / rate
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp])
    return b / a[0], a / a[0]


def replay(signal, rate, seed=0, snr_db=(35.0, 50.0), rt60_s=(0.1, 0.4), distance_m=(0.2, 1.0), gain_db=6.0):
    """Replay: loudspeaker, room, re-recording microphone and noise, all drawn from ``seed`` (see
    module docstring); at the input RMS times a seeded playback gain within +-``gain_db``."""
    import scipy.signal
    pra = _require("pyroomacoustics")
    rng = np.random.default_rng(seed)
    x = np.asarray(signal, dtype=np.float64)
    rms = np.sqrt(np.mean(x ** 2)) + 1e-9
    # loudspeaker: amplifier soft clip, 2nd-order high-pass at 120-300 Hz, 1st-order roll-off at
    # 6-7.2 kHz, three resonances of +-1-4 dB between 300 Hz and 5 kHz
    y = np.tanh(x / (rng.uniform(3.0, 6.0) * rms))
    y = scipy.signal.sosfilt(scipy.signal.butter(2, rng.uniform(120, 300), "highpass", fs=rate, output="sos"), y)
    y = scipy.signal.sosfilt(scipy.signal.butter(1, min(rng.uniform(6000, 7500), 0.45 * rate), "lowpass",
                                                 fs=rate, output="sos"), y)
    for _ in range(3):
        gain = rng.uniform(1.0, 4.0) * rng.choice([-1.0, 1.0])
        b, a = _peaking(np.exp(rng.uniform(np.log(300), np.log(5000))), gain, rng.uniform(1.0, 4.0), rate)
        y = scipy.signal.lfilter(b, a, y)
    # room: shoebox of seeded size, walls giving the seeded RT60 (Sabine), image method
    dims = np.array([rng.uniform(3, 7), rng.uniform(3, 5), rng.uniform(2.4, 3.2)])
    rt60 = rng.uniform(*rt60_s)
    try:
        absorption, max_order = pra.inverse_sabine(rt60, dims)
    except ValueError:  # RT60 too short for this room: the most absorbent walls
        absorption, max_order = 0.99, 2
    room = pra.ShoeBox(dims, fs=rate, materials=pra.Material(float(absorption)), max_order=min(int(max_order), 17))
    src = rng.uniform([0.5, 0.5, 1.0], dims - [0.5, 0.5, 0.8])
    mic = dims / 2
    for _ in range(100):  # microphone at the seeded distance from the loudspeaker, inside the room
        direction = rng.normal(size=3)
        cand = src + rng.uniform(*distance_m) * direction / np.linalg.norm(direction)
        if np.all(cand > 0.3) and np.all(cand < dims - 0.3):
            mic = cand
            break
    room.add_source(src)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    delay = int(np.argmax(np.abs(rir)))  # keep the utterance aligned on the direct path
    y = scipy.signal.fftconvolve(y, rir)[delay: delay + x.size]
    # re-recording device: 1st-order high-pass at 50-150 Hz; ambient noise (pink) at the seeded SNR
    y = scipy.signal.sosfilt(scipy.signal.butter(1, rng.uniform(50, 150), "highpass", fs=rate, output="sos"), y)
    y = _fit_length(y, x.size)
    y *= rms * 10 ** (rng.uniform(-gain_db, gain_db) / 20.0) / (np.sqrt(np.mean(y ** 2)) + 1e-12)
    spec = np.fft.rfft(rng.normal(size=x.size))
    spec /= np.sqrt(np.maximum(np.arange(spec.size), 1.0))
    noise = np.fft.irfft(spec, x.size)
    noise *= rms * 10 ** (-rng.uniform(*snr_db) / 20.0) / (np.sqrt(np.mean(noise ** 2)) + 1e-12)
    return np.clip(y + noise, -32768, 32767).astype(np.float32)


ATTACKS = {"griffin_lim": griffin_lim, "mel_griffin_lim": mel_griffin_lim, "replay": replay, "world": world}


def _require(module):
    import importlib
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise SpkrecError(f"this attack needs {module} ({err}); pip install 'spkrec[spoof]' or leave the "
                          "attack out") from None


def attack_function(name):
    """The attack ``f(signal, rate, seed)`` called ``name`` (a key of :data:`ATTACKS`)."""
    if name not in ATTACKS:
        raise SpkrecError(f"unknown attack {name!r}; use one of {', '.join(ATTACKS)}")
    return ATTACKS[name]


def parse_attacks(text):
    """``"griffin_lim,replay"`` -> ``["griffin_lim", "replay"]`` (checked, no duplicates)."""
    names = [a.strip() for a in str(text).split(",") if a.strip()]
    if not names:
        raise SpkrecError("no attacks given; use e.g. --attacks griffin_lim,replay,world")
    for name in names:
        attack_function(name)
    if len(set(names)) != len(names):
        raise SpkrecError(f"attack listed twice in {text!r}")
    return names


def _write_wav(path, signal, rate):
    import scipy.io.wavfile
    from spkrec.io.atomic import atomic_path
    with atomic_path(path) as tmp:
        scipy.io.wavfile.write(tmp, int(rate), np.clip(np.round(signal), -32768, 32767).astype(np.int16))


def _simulate_utt(item, data_dir, out_dir, attacks, seed, include_bonafide):
    import os

    from spkrec.io.datadir import DataDir
    utt = item
    signal, rate = DataDir(data_dir).load_audio(utt)
    rows = []
    for attack in ([BONAFIDE] if include_bonafide else []) + list(attacks):
        new = utt if attack == BONAFIDE else f"{utt}-{attack}"
        path = os.path.join(os.path.abspath(out_dir), "wav", attack, f"{new}.wav")
        if not os.path.exists(path):
            y = signal if attack == BONAFIDE else attack_function(attack)(signal, rate,
                                                                        utterance_seed(seed, attack, utt))
            if y.shape != signal.shape or not np.all(np.isfinite(y)):
                raise SpkrecError(f"attack {attack} gave {y.shape} samples for {utt!r} ({signal.shape} in)")
            _write_wav(path, y, rate)
        rows.append((new, attack, path))
    return utt, rows


def simulate_data_dir(data_dir, out_dir, attacks, seed=0, include_bonafide=True, parallel=None):
    """Write the attacks of every utterance of ``data_dir`` as 16-bit wavs under ``OUT/wav/<attack>/``
    and a Kaldi data dir ``OUT`` (``wav.scp``, ``utt2spk``, ``spk2utt``, ``utt2attack``; spoofed
    utterances are ``<utt>-<attack>``, bona fide ones keep their id and the attack ``bonafide``).

    Wavs already written are reused (a killed run resumes). Returns ``{attack: number of utterances}``.
    """
    import collections
    import os

    from spkrec.io.datadir import DataDir, write_data_dir, write_table
    from spkrec.parallel import SERIAL, map_items
    attacks = parse_attacks(",".join(attacks) if not isinstance(attacks, str) else attacks)
    for name in attacks:  # fail before any work when an optional dependency is missing
        if name in ("world", "replay"):
            _require({"world": "pyworld", "replay": "pyroomacoustics"}[name])
    data = DataDir(data_dir)
    utts = data.utts
    if not utts:
        raise SpkrecError(f"{data.file('utt2spk')}: no utterances to spoof; prepare the data dir first")
    results = map_items(_simulate_utt, utts, parallel or SERIAL, desc="simulate-spoofs",
                        data_dir=os.fspath(data_dir), out_dir=os.fspath(out_dir), attacks=attacks, seed=seed,
                        include_bonafide=include_bonafide)
    utt2spk, wav_scp, utt2attack = {}, {}, {}
    for utt, rows in results:
        for new, attack, path in rows:
            utt2spk[new], wav_scp[new], utt2attack[new] = data.utt2spk[utt], path, attack
    spk2gender = data.spk2gender if data.has("spk2gender") else None
    write_data_dir(out_dir, wav_scp, utt2spk, spk2gender)
    write_table(os.path.join(out_dir, "utt2attack"), utt2attack)
    return dict(collections.Counter(utt2attack.values()))


def read_utt2attack(data_dir):
    """``{utt: attack}`` of ``DATA/utt2attack`` (one line error when missing or malformed)."""
    import os

    from spkrec.io.datadir import read_table
    path = os.path.join(data_dir, "utt2attack")
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: file not found; make the data dir with `spkrec simulate-spoofs` or write "
                          "<utt> <attack> lines (bonafide for bona fide speech)")
    return read_table(path, 2, 2, "utt2attack")
