"""RTTM (who spoke when) and UEM (which part of a file is scored) files, as NIST md-eval reads them.

RTTM: one speaker turn per line, 10 space-separated fields
``SPEAKER <file> <channel> <onset s> <duration s> <NA> <NA> <speaker> <NA> <NA>`` (lines of other types,
blank lines and ``;;`` comments are skipped). UEM: ``<file> <channel> <onset s> <offset s>``.
In memory: ``{file: [Turn(start, end, speaker), ...]}`` sorted by start, and ``{file: [(start, end), ...]}``.
"""
import collections
import math

from spkrec.errors import SpkrecError
from spkrec.io.atomic import write_lines_atomic

Turn = collections.namedtuple("Turn", "start end speaker")
_SKIP_TYPES = {"SPKR-INFO", "SEGMENT", "LEXEME", "NON-SPEECH", "NON-LEX", "NOSCORE", "NO_RT_METADATA", "FILLER",
               "SU", "CB", "IP", "EDIT", "A/P", "NOTE"}


def _lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                fields = line.split()
                if fields and not fields[0].startswith(";;") and not fields[0].startswith("#"):
                    yield lineno, fields
    except FileNotFoundError:
        raise SpkrecError(f"{path}: no such file; give an existing file") from None
    except UnicodeDecodeError as exc:
        raise SpkrecError(f"{path}: not a text file ({exc.reason}); give an RTTM/UEM text file") from None


def _seconds(value, path, lineno, what):
    try:
        x = float(value)
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or x < 0:
        raise SpkrecError(f"{path}:{lineno}: {what} {value!r} is not a non-negative number of seconds; "
                          "fix the line")
    return x


def read_rttm(path):
    """``{file: [Turn(start, end, speaker)]}`` (seconds, sorted) from the SPEAKER lines of an RTTM file."""
    out = {}
    for lineno, f in _lines(path):
        if f[0] != "SPEAKER":
            if f[0] in _SKIP_TYPES:
                continue
            raise SpkrecError(f"{path}:{lineno}: unknown RTTM line type {f[0]!r}; expected 'SPEAKER <file> "
                              "<channel> <onset> <duration> <NA> <NA> <speaker> <NA> <NA>'")
        if len(f) < 8:
            raise SpkrecError(f"{path}:{lineno}: {len(f)} fields, an RTTM SPEAKER line needs at least 8 "
                              "('SPEAKER <file> <channel> <onset> <duration> <NA> <NA> <speaker> ...'); fix the line")
        start = _seconds(f[3], path, lineno, "onset")
        dur = _seconds(f[4], path, lineno, "duration")
        out.setdefault(f[1], []).append(Turn(start, start + dur, f[7]))
    return {k: sorted(v) for k, v in out.items()}


def write_rttm(path, turns, channel=1):
    """Write ``{file: [Turn or (start, end, speaker)]}`` as RTTM (3 decimals), atomically."""
    lines = []
    for name in sorted(turns):
        _check_name(name, "file")
        for start, end, speaker in sorted(turns[name]):
            _check_name(str(speaker), "speaker")
            if end <= start:
                continue
            lines.append(f"SPEAKER {name} {channel} {start:.3f} {end - start:.3f} <NA> <NA> {speaker} <NA> <NA>")
    write_lines_atomic(path, lines)


def read_uem(path):
    """``{file: [(start, end)]}`` (seconds, sorted) from a UEM file."""
    out = {}
    for lineno, f in _lines(path):
        if len(f) != 4:
            raise SpkrecError(f"{path}:{lineno}: {len(f)} fields, a UEM line has 4 ('<file> <channel> "
                              "<onset> <offset>'); fix the line")
        start = _seconds(f[2], path, lineno, "onset")
        end = _seconds(f[3], path, lineno, "offset")
        if end < start:
            raise SpkrecError(f"{path}:{lineno}: offset {f[3]} is before onset {f[2]}; fix the line")
        out.setdefault(f[0], []).append((start, end))
    return {k: sorted(v) for k, v in out.items()}


def write_uem(path, regions, channel=1):
    """Write ``{file: [(start, end)]}`` as UEM, atomically."""
    lines = []
    for name in sorted(regions):
        _check_name(name, "file")
        lines += [f"{name} {channel} {s:.3f} {e:.3f}" for s, e in sorted(regions[name])]
    write_lines_atomic(path, lines)


def _check_name(name, what):
    if not name or any(c.isspace() for c in name):
        raise SpkrecError(f"{what} name {name!r} is empty or has white space, which RTTM cannot hold; rename it")


__all__ = ["Turn", "read_rttm", "write_rttm", "read_uem", "write_uem"]
