"""Audio reading: WAV, FLAC and NIST SPHERE via soundfile; mono mix-down; resampling.

Sample scale: signals are returned as float32 in the **int16 range** (a full-scale sine peaks at
32767), as Kaldi and python_speech_features see 16-bit audio. Energies and log-mel values therefore
match those tools without rescaling.
"""
import io as _io
import os
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


def declared_wav_frames(f):
    """Number of sample frames a RIFF/WAVE header declares (``data`` size / block align), or ``None``.

    ``f`` is a binary file positioned at the start. ``None`` for other formats and for streamed WAVs
    whose ``data`` size is unset (0 or 0xFFFFFFFF). libsndfile silently shortens a truncated WAV to
    the bytes present, so this is the only way to notice one.
    """
    head = f.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    block_align = None
    while True:
        chunk = f.read(8)
        if len(chunk) < 8:
            return None
        cid, size = chunk[:4], int.from_bytes(chunk[4:8], "little")
        if cid == b"fmt ":
            fmt = f.read(size)
            if len(fmt) < 14:
                return None
            block_align = int.from_bytes(fmt[12:14], "little")
            if size % 2:
                f.read(1)
        elif cid == b"data":
            if not block_align or size in (0, 0xFFFFFFFF):
                return None
            return size // block_align
        else:
            f.seek(size + size % 2, 1)


def _decode(source_or_file, where, source):
    """Decode with soundfile; check that the samples read are as many as the header declares."""
    with sf.SoundFile(source_or_file) as f:
        expected = f.frames
        data = f.read(dtype="float32", always_2d=False)
    if isinstance(source_or_file, str):
        with open(source_or_file, "rb") as raw:
            declared = declared_wav_frames(raw)
    else:
        source_or_file.seek(0)
        declared = declared_wav_frames(source_or_file)
    got = len(data)
    if declared is not None and declared > expected:
        expected = declared
    if got < expected:
        raise SpkrecError(f"{where}audio {source!r} is truncated: its header says {expected} samples, "
                          f"only {got} could be read; replace it with a complete file or remove the entry")
    return data, f.samplerate


def read_audio(source, target_rate=None, allow_commands=False, name=None, command_timeout=None):
    """Read one utterance.

    Parameters
    ----------
    source : str
        A file path, or (Kaldi ``wav.scp`` style) a shell command ending in ``|`` whose standard
        output is an audio file; commands run only when ``allow_commands`` is true, with standard
        input closed, and are killed after ``command_timeout`` seconds (default
        :data:`spkrec.io.command.DEFAULT_TIMEOUT`).
    target_rate : int, optional
        Resample to this rate (Hz) when the file's rate differs.
    name : str, optional
        Where the source came from (e.g. ``"data/train/wav.scp:12"``), used in error messages.

    A truncated file (fewer samples than its header declares), samples that are NaN or inf, or an
    empty file raise :class:`SpkrecError`.

    Returns
    -------
    signal : ndarray, shape (num_samples,), float32, int16 scale
    rate : int, sample rate in Hz (``target_rate`` when given)
    """
    from spkrec.io.command import DEFAULT_TIMEOUT, is_command, refuse_command, run_command
    where = f"{name}: " if name else ""
    source = source.strip()
    try:
        if is_command(source):
            if not allow_commands:
                raise refuse_command(source, name or "wav.scp", "wav.scp", "audio")
            out = run_command(source, name or "wav.scp",
                              DEFAULT_TIMEOUT if command_timeout is None else command_timeout)
            data, rate = _decode(_io.BytesIO(out), where, source)
        else:
            if not os.path.exists(source):
                raise SpkrecError(f"{where}audio file not found: {source}; fix the path in wav.scp")
            if os.path.isdir(source):
                raise SpkrecError(f"{where}{source} is a directory, not an audio file; fix the path in wav.scp")
            data, rate = _decode(source, where, source)
    except SpkrecError:
        raise
    except Exception as exc:  # soundfile.LibsndfileError, RuntimeError ...
        raise SpkrecError(f"{where}cannot decode audio {source!r} ({str(exc).strip().splitlines()[0][:120]}); "
                          "check that the file is a complete WAV/FLAC/SPHERE file") from None
    if data.size and not np.isfinite(data).all():
        bad = tuple(np.argwhere(~np.isfinite(data))[0])
        raise SpkrecError(f"{where}audio {source!r} has a non-finite sample ({data[bad]} at sample {bad[0]}); "
                          "fix or replace the file (a float WAV holding NaN/inf)")
    signal = _to_mono_int16_scale(data)
    if signal.size == 0:
        raise SpkrecError(f"{where}audio {source!r} is empty (0 samples); remove it from the data dir")
    if target_rate is not None and int(rate) != int(target_rate):
        signal = resample(signal, int(rate), int(target_rate))
        rate = int(target_rate)
    return signal, int(rate)
