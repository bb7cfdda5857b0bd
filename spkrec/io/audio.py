"""Audio reading: WAV, FLAC and NIST SPHERE via soundfile; mono mix-down; resampling.

Sample scale: signals are returned as float32 in the **int16 range** (a full-scale sine peaks at
32767), as Kaldi and python_speech_features see 16-bit audio. Energies and log-mel values therefore
match those tools without rescaling.
"""
import io as _io
import os
import subprocess
from math import gcd

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from spkrec.errors import SpkrecError

INT16_SCALE = 32768.0


def _to_mono_int16_scale(data):
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data.mean(axis=1, dtype=np.float32)
    return data * np.float32(INT16_SCALE)


def resample(signal, rate, target_rate):
    """Resample ``signal`` (1-D) from ``rate`` to ``target_rate`` Hz with a polyphase filter."""
    if rate == target_rate:
        return np.asarray(signal, dtype=np.float32)
    g = gcd(int(rate), int(target_rate))
    return resample_poly(signal, int(target_rate) // g, int(rate) // g).astype(np.float32)


def read_audio(source, target_rate=None, allow_commands=False, name=None):
    """Read one utterance.

    Parameters
    ----------
    source : str
        A file path, or (Kaldi ``wav.scp`` style) a shell command ending in ``|`` whose standard
        output is an audio file; commands run only when ``allow_commands`` is true.
    target_rate : int, optional
        Resample to this rate (Hz) when the file's rate differs.
    name : str, optional
        Where the source came from (e.g. ``"data/train/wav.scp:12"``), used in error messages.

    Returns
    -------
    signal : ndarray, shape (num_samples,), float32, int16 scale
    rate : int, sample rate in Hz (``target_rate`` when given)
    """
    where = f"{name}: " if name else ""
    source = source.strip()
    try:
        if source.endswith("|"):
            if not allow_commands:
                raise SpkrecError(
                    f"{where}audio is a command ({source!r}); pass --allow-commands to run wav.scp pipes")
            proc = subprocess.run(source[:-1], shell=True, capture_output=True, check=False)
            if proc.returncode != 0:
                msg = proc.stderr.decode(errors="replace").strip().splitlines()
                raise SpkrecError(f"{where}command {source!r} failed (exit {proc.returncode})"
                                  + (f": {msg[-1]}" if msg else ""))
            data, rate = sf.read(_io.BytesIO(proc.stdout), dtype="float32", always_2d=False)
        else:
            if not os.path.exists(source):
                raise SpkrecError(f"{where}audio file not found: {source}; fix the path in wav.scp")
            data, rate = sf.read(source, dtype="float32", always_2d=False)
    except SpkrecError:
        raise
    except Exception as exc:  # soundfile.LibsndfileError, RuntimeError ...
        raise SpkrecError(f"{where}cannot decode audio {source!r} ({exc}); check that the file is a complete "
                          "WAV/FLAC/SPHERE file") from None
    signal = _to_mono_int16_scale(data)
    if signal.size == 0:
        raise SpkrecError(f"{where}audio {source!r} is empty (0 samples); remove it from the data dir")
    if target_rate is not None and int(rate) != int(target_rate):
        signal = resample(signal, int(rate), int(target_rate))
        rate = int(target_rate)
    return signal, int(rate)
