"""Kaldi-style data directories: ``wav.scp``, ``utt2spk``, ``spk2utt``, ``segments``, ``spk2gender``,
``feats.scp``, ``vad.scp``, ``utt2num_frames``.

Every table is a text file of ``<key> <value...>`` lines sorted by key (C locale byte order, as Kaldi's
``LC_ALL=C sort``). Readers return ``dict`` (insertion order = file order) and raise
:class:`~spkrec.errors.SpkrecError` naming ``file:line`` for any malformed line.
"""
import os

from spkrec.errors import SpkrecError
from spkrec.io.atomic import write_lines_atomic


def read_table(path, min_fields=2, max_fields=None, what=None):
    """Read ``<key> <value>`` lines into ``{key: value}`` (value is the rest of the line, stripped).

    ``min_fields``/``max_fields`` bound the number of whitespace-separated fields per line.
    Blank lines are errors (Kaldi rejects them too); duplicate keys are errors.
    """
    path = os.fspath(path)
    what = what or os.path.basename(path)
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: file not found; create {what} (see `spkrec prepare-data --help`)")
    table = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            fields = line.split()
            if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
                expect = (f"{min_fields}" if max_fields == min_fields else
                          f"at least {min_fields}" if max_fields is None else f"{min_fields}-{max_fields}")
                raise SpkrecError(f"{path}:{lineno}: expected {expect} fields in {what}, got {len(fields)} "
                                  f"({line[:60]!r}); fix or remove this line")
            key = fields[0]
            if key in table:
                raise SpkrecError(f"{path}:{lineno}: duplicate key {key!r} in {what}; keys must be unique")
            table[key] = line.split(None, 1)[1].strip() if len(fields) > 1 else ""
    return table


def write_table(path, table, sort=True):
    """Write ``{key: value}`` as ``key value`` lines (sorted by key in C order), atomically.

    Values that are lists/tuples are joined with spaces.
    """
    keys = sorted(table, key=lambda k: k.encode("utf-8")) if sort else list(table)
    lines = []
    for k in keys:
        v = table[k]
        if isinstance(v, (list, tuple)):
            v = " ".join(str(x) for x in v)
        lines.append(f"{k} {v}")
    write_lines_atomic(path, lines)


def utt2spk_to_spk2utt(utt2spk):
    """``{utt: spk}`` -> ``{spk: [utt, ...]}`` (speakers and their utterances in sorted order)."""
    spk2utt = {}
    for utt in sorted(utt2spk, key=lambda k: k.encode("utf-8")):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return dict(sorted(spk2utt.items(), key=lambda kv: kv[0].encode("utf-8")))


def spk2utt_to_utt2spk(spk2utt):
    """``{spk: [utt, ...]}`` -> ``{utt: spk}`` sorted by utterance."""
    pairs = {u: s for s, utts in spk2utt.items() for u in utts}
    return dict(sorted(pairs.items(), key=lambda kv: kv[0].encode("utf-8")))
