"""A user's own recordings: one folder per speaker, or a ``speaker,path`` CSV list -> ``{speaker: [paths]}``,
and a Kaldi data dir of them (so they enter the recipes without a corpus-specific script).

Folder layout: ``DIR/<speaker>/**/<file>.<ext>`` (audio files anywhere below the speaker's folder; other
files and hidden entries are ignored). CSV: ``speaker,path`` lines (an optional ``speaker,path`` header,
``#`` comments, blank lines skipped); relative paths are relative to the CSV file's folder.
"""
import csv
import os
import re

from spkrec.errors import SpkrecError

AUDIO_EXTENSIONS = (".wav", ".flac", ".sph", ".nist", ".ogg", ".oga", ".aiff", ".aif", ".au", ".mp3", ".opus")


def is_audio(name):
    return name.lower().endswith(AUDIO_EXTENSIONS) and not name.startswith(".")


def _check_speaker(name, where):
    if not name or any(c.isspace() for c in name):
        raise SpkrecError(f"{where}: speaker name {name!r} is empty or has whitespace; rename it "
                          "(names become Kaldi ids)")
    return name


def speakers_from_dir(root):
    """``{speaker: [audio paths, sorted]}`` of ``root/<speaker>/...`` (speakers in sorted order)."""
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise SpkrecError(f"{root}: directory not found; give a folder with one sub-folder per speaker")
    out = {}
    for spk in sorted(os.listdir(root)):
        folder = os.path.join(root, spk)
        if spk.startswith(".") or not os.path.isdir(folder):
            continue
        _check_speaker(spk, folder)
        files = []
        for dirpath, dirnames, names in os.walk(folder):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            files += [os.path.join(dirpath, n) for n in sorted(names) if is_audio(n)]
        if not files:
            raise SpkrecError(f"{folder}: no audio files ({', '.join(AUDIO_EXTENSIONS[:4])}, ...) for speaker "
                              f"{spk!r}; add recordings or remove the folder")
        out[spk] = sorted(os.path.abspath(f) for f in files)
    if not out:
        raise SpkrecError(f"{root}: no speaker sub-folders; put each speaker's recordings in DIR/<speaker>/")
    return out


def speakers_from_list(path):
    """``{speaker: [audio paths]}`` (file order) of a ``speaker,path`` CSV; every file must exist."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SpkrecError(f"{path}: list not found; give a CSV of speaker,path lines")
    base = os.path.dirname(os.path.abspath(path))
    out = {}
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, row in enumerate(csv.reader(f), 1):
            row = [c.strip() for c in row]
            if not row or not any(row) or row[0].startswith("#"):
                continue
            if lineno == 1 and [c.lower() for c in row] == ["speaker", "path"]:
                continue
            if len(row) != 2 or not row[1]:
                raise SpkrecError(f"{path}:{lineno}: expected 'speaker,path', got {','.join(row)!r}; fix this line")
            spk = _check_speaker(row[0], f"{path}:{lineno}")
            audio = row[1] if os.path.isabs(row[1]) else os.path.join(base, row[1])
            if not os.path.isfile(audio):
                raise SpkrecError(f"{path}:{lineno}: audio file not found: {audio} (relative paths are relative "
                                  "to the list's folder); fix the path")
            out.setdefault(spk, []).append(os.path.abspath(audio))
    if not out:
        raise SpkrecError(f"{path}: no speaker,path lines; add one line per recording")
    return out


def _utt_id(spk, path, taken):
    stem = os.path.splitext(os.path.basename(path))[0]
    utt = f"{spk}-{re.sub(r'[^A-Za-z0-9_.+-]', '_', stem)}"
    base, n = utt, 1
    while utt in taken:
        n += 1
        utt = f"{base}-{n}"
    taken.add(utt)
    return utt


def make_data_dir(speakers, out):
    """Write the Kaldi data dir ``out`` (``wav.scp`` with absolute paths, ``utt2spk``, ``spk2utt``, C-sorted)
    of ``{speaker: [audio paths]}``; utterance ids are ``<speaker>-<file stem>``. Returns a ``DataDir``."""
    from spkrec.io.datadir import write_data_dir
    wav_scp, utt2spk, taken = {}, {}, set()
    for spk, files in speakers.items():
        for f in files:
            utt = _utt_id(spk, f, taken)
            wav_scp[utt] = os.path.abspath(f)
            utt2spk[utt] = spk
    return write_data_dir(out, wav_scp, utt2spk)
