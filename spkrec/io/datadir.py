"""Kaldi-style data directories: ``wav.scp``, ``utt2spk``, ``spk2utt``, ``segments``, ``spk2gender``,
``feats.scp``, ``vad.scp``, ``utt2num_frames``.

Every table is a text file of ``<key> <value...>`` lines sorted by key (C locale byte order, as Kaldi's
``LC_ALL=C sort``). Readers return ``dict`` (insertion order = file order) and raise
:class:`~spkrec.errors.SpkrecError` naming ``file:line`` for any malformed line.

``wav.scp`` values are a file path (WAV/FLAC/SPHERE) or a shell command ending in ``|`` whose output is
an audio file (run only with ``allow_commands=True``). ``segments`` lines are
``<utt> <recording> <start_s> <end_s>`` (``end_s = -1``: to the end of the recording); with segments,
``wav.scp`` is keyed by recording.
"""
import functools
import logging
import math
import os

from spkrec.errors import SpkrecError
from spkrec.io.atomic import write_lines_atomic
from spkrec.io.text import not_utf8_message

log = logging.getLogger("spkrec")

# table name -> (min fields, max fields, keyed by); "utt" tables are restricted by utterance in subsets
TABLES = {
    "wav.scp": (2, None, "rec"),
    "utt2spk": (2, 2, "utt"),
    "spk2utt": (2, None, "spk"),
    "segments": (4, 4, "utt"),
    "spk2gender": (2, 2, "spk"),
    "feats.scp": (2, 2, "utt"),
    "vad.scp": (2, 2, "utt"),
    "utt2num_frames": (2, 2, "utt"),
    "utt2dur": (2, 2, "utt"),
    "text": (1, None, "utt"),
    "reco2dur": (2, 2, "rec"),
}
SEGMENT_OVERSHOOT_S = 0.5  # Kaldi extract-segments --max-overshoot


def c_sorted(keys):
    """Sort strings in C-locale byte order (``LC_ALL=C sort``); equals Python's code-point order."""
    return sorted(keys)


def _parse_table(path, min_fields, max_fields, what, problems=None, check_sorted=False):
    """Parse a table; returns ``(table, line_of_key)``.

    With ``problems=None`` the first malformed line raises :class:`SpkrecError`; with a list, every
    problem is appended as a one-line message and parsing continues (bad lines are skipped).
    """
    path = os.fspath(path)
    what = what or os.path.basename(path)

    def problem(msg):
        if problems is None:
            raise SpkrecError(msg)
        problems.append(msg)

    if not os.path.exists(path):
        problem(f"{path}: file not found; create {what} (see `spkrec prepare-data --help`)")
        return {}, {}
    table, line_of = {}, {}
    previous = None
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for lineno, line in enumerate(f, 1):
            line = line.rstrip("\n").rstrip("\r")
            msg = not_utf8_message(path, lineno, line, names_files=True)
            if msg is not None:
                problem(msg)
                continue
            fields = line.split()
            if not fields:
                problem(f"{path}:{lineno}: blank line in {what}; remove it")
                continue
            if len(fields) < min_fields or (max_fields is not None and len(fields) > max_fields):
                expect = (f"{min_fields}" if max_fields == min_fields else
                          f"at least {min_fields}" if max_fields is None else f"{min_fields}-{max_fields}")
                problem(f"{path}:{lineno}: expected {expect} fields in {what}, got {len(fields)} "
                        f"({line[:60]!r}); fix or remove this line")
                continue
            key = fields[0]
            if key in table:
                problem(f"{path}:{lineno}: duplicate key {key!r} in {what} (first on line {line_of[key]}); "
                        "keys must be unique")
                continue
            if check_sorted and previous is not None and key < previous:
                problem(f"{path}:{lineno}: {what} is not sorted ({key!r} after {previous!r}); "
                        f"sort it with `LC_ALL=C sort -k1,1 -o {what} {what}`")
                check_sorted = False  # one report per file
            previous = key
            table[key] = line.split(None, 1)[1].strip() if len(fields) > 1 else ""
            line_of[key] = lineno
    return table, line_of


def read_table(path, min_fields=2, max_fields=None, what=None, check_sorted=False, line_numbers=None):
    """Read ``<key> <value>`` lines into ``{key: value}`` (value is the rest of the line, stripped).

    ``min_fields``/``max_fields`` bound the number of whitespace-separated fields per line.
    Blank lines are errors (Kaldi rejects them too); duplicate keys are errors; with
    ``check_sorted`` keys out of C-locale order are errors. A dict passed as ``line_numbers``
    receives ``{key: 1-based line}``.
    """
    table, line_of = _parse_table(path, min_fields, max_fields, what, check_sorted=check_sorted)
    if line_numbers is not None:
        line_numbers.update(line_of)
    return table


def write_table(path, table, sort=True):
    """Write ``{key: value}`` as ``key value`` lines (sorted by key in C order), atomically.

    Values that are lists/tuples are joined with spaces.
    """
    keys = c_sorted(table) if sort else list(table)
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
    for utt in c_sorted(utt2spk):
        spk2utt.setdefault(utt2spk[utt], []).append(utt)
    return {k: spk2utt[k] for k in c_sorted(spk2utt)}


def read_spk2utt(path, line_numbers=None, strict=True):
    """Read ``spk2utt`` -> ``{spk: [utt, ...]}``; it must agree with ``utt2spk`` in the same directory.

    When that ``utt2spk`` exists, an utterance listed twice or under another speaker than ``utt2spk``
    says raises :class:`SpkrecError` naming both files' lines (a stale ``spk2utt`` would otherwise enrol
    the wrong utterances silently); with ``strict`` (a data dir's own ``spk2utt``) so does an utterance
    that only one of the two files lists. A dict passed as ``line_numbers`` receives
    ``{spk: 1-based line}``.
    """
    path = os.fspath(path)
    lines = {} if line_numbers is None else line_numbers
    spk2utt = {s: v.split() for s, v in read_table(path, 2, None, "spk2utt", line_numbers=lines).items()}
    u2s_path = os.path.join(os.path.dirname(path), "utt2spk")
    if not os.path.exists(u2s_path):
        return spk2utt
    u2s_lines = {}
    utt2spk = read_table(u2s_path, 2, 2, "utt2spk", line_numbers=u2s_lines)
    fix = f"regenerate it from utt2spk (utils/utt2spk_to_spk2utt.pl {u2s_path} > {path})"
    seen = {}
    for spk, utts in spk2utt.items():
        for u in utts:
            where = f"{path}:{lines[spk]}"
            if u in seen:
                raise SpkrecError(f"{where}: utterance {u!r} is listed again (first under speaker {seen[u]!r}); {fix}")
            seen[u] = spk
            if u not in utt2spk:
                if not strict:
                    continue
                raise SpkrecError(f"{where}: utterance {u!r} of speaker {spk!r} is not in {u2s_path}; {fix}")
            if utt2spk[u] != spk:
                raise SpkrecError(f"{where}: utterance {u!r} is under speaker {spk!r} but {u2s_path}:"
                                  f"{u2s_lines[u]} says {utt2spk[u]!r}; {fix}")
    for u in utt2spk if strict else ():
        if u not in seen:
            raise SpkrecError(f"{u2s_path}:{u2s_lines[u]}: utterance {u!r} (speaker {utt2spk[u]!r}) is missing "
                              f"from {path}; {fix}")
    return spk2utt


def _parse_segment(value, where):
    """``"<rec> <start> <end>"`` -> ``(rec, start_s, end_s)``; raises with ``where`` on bad times."""
    rec, start, end = value.split()
    try:
        start_s, end_s = float(start), float(end)
    except ValueError:
        raise SpkrecError(f"{where}: segment times {start!r} {end!r} are not numbers; "
                          "use '<utt> <recording> <start_s> <end_s>'") from None
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise SpkrecError(f"{where}: segment times {start} {end} are not finite; "
                          "use seconds (end -1 for the end of the recording)")
    if not (start_s >= 0 and (end_s == -1 or end_s > start_s)):
        raise SpkrecError(f"{where}: bad segment times {start} {end} (need 0 <= start < end, or end = -1 "
                          "for the end of the recording); fix this line")
    return rec, start_s, end_s


class DataDir:
    """A Kaldi-style data directory with lazily loaded, validated tables.

    Attributes (each read on first access; optional tables are ``None`` when the file is absent):

    - ``wav_scp``: ``{utt or recording: path or "command |"}`` (required)
    - ``utt2spk``: ``{utt: spk}`` (required); ``utts``: sorted utterance ids
    - ``spk2utt``: ``{spk: [utt, ...]}`` (from ``spk2utt``, else derived from ``utt2spk``)
    - ``segments``: ``{utt: (recording, start_s, end_s)}`` (``end_s = -1``: to the end) or ``None``
    - ``spk2gender``: ``{spk: "m"|"f"}`` or ``None``
    - ``feats_scp``, ``vad_scp``: ``{utt: rxfilename}`` or ``None``
    - ``utt2num_frames``: ``{utt: int}`` or ``None``

    Tables must be sorted (C locale) with unique keys; a violation raises :class:`SpkrecError`
    naming ``file:line``. Instances are picklable (for parallel workers).
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._lines = {}
        self._last_recording = None  # (key, rate, signal): segments of one recording in a row read it once

    def __repr__(self):
        return f"DataDir({self.path!r})"

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_last_recording"] = None
        return state

    def file(self, name):
        """Path of table ``name`` inside the data dir."""
        return os.path.join(self.path, name)

    def has(self, name):
        """Whether table ``name`` exists."""
        return os.path.exists(self.file(name))

    def line_of(self, name, key):
        """1-based line of ``key`` in table ``name`` (after that table was read), or ``None``."""
        return self._lines.get(name, {}).get(key)

    def _read(self, name, required=True):
        if not required and not self.has(name):
            return None
        lo, hi, _ = TABLES[name]
        table, lines = _parse_table(self.file(name), lo, hi, name, check_sorted=True)
        self._lines[name] = lines
        return table

    @functools.cached_property
    def wav_scp(self):
        return self._read("wav.scp")

    @functools.cached_property
    def utt2spk(self):
        return self._read("utt2spk")

    @functools.cached_property
    def utts(self):
        return c_sorted(self.utt2spk)

    @functools.cached_property
    def spk2utt(self):
        table = self._read("spk2utt", required=False)
        if table is None:
            return utt2spk_to_spk2utt(self.utt2spk)
        return read_spk2utt(self.file("spk2utt"))  # must agree with utt2spk

    @functools.cached_property
    def segments(self):
        table = self._read("segments", required=False)
        if table is None:
            return None
        return {utt: _parse_segment(v, f"{self.file('segments')}:{self.line_of('segments', utt)}")
                for utt, v in table.items()}

    @functools.cached_property
    def spk2gender(self):
        return self._read("spk2gender", required=False)

    @functools.cached_property
    def feats_scp(self):
        return self._read("feats.scp", required=False)

    @functools.cached_property
    def vad_scp(self):
        return self._read("vad.scp", required=False)

    @functools.cached_property
    def utt2num_frames(self):
        table = self._read("utt2num_frames", required=False)
        if table is None:
            return None
        out = {}
        for utt, v in table.items():
            try:
                out[utt] = int(v)
            except ValueError:
                raise SpkrecError(f"{self.file('utt2num_frames')}:{self.line_of('utt2num_frames', utt)}: "
                                  f"{v!r} is not a frame count; recompute features") from None
        return out

    def _wav_entry(self, key, for_utt):
        entry = self.wav_scp.get(key)
        if entry is None:
            if self.segments is None and self.has("utt2spk"):
                self.utt2spk  # noqa: B018 -- read it for the line number in the message
            where = (f"{self.file('segments')}:{self.line_of('segments', for_utt)}: recording {key!r}"
                     if self.segments is not None else f"{self.file('utt2spk')}:"
                     f"{self.line_of('utt2spk', for_utt) or '?'}: utterance {key!r}")
            raise SpkrecError(f"{where} is not in {self.file('wav.scp')}; add it or remove the utterance "
                              "(`spkrec validate-data-dir` lists all such problems)")
        return entry, f"{self.file('wav.scp')}:{self.line_of('wav.scp', key)}"

    def load_audio(self, utt, target_rate=None, allow_commands=False, command_timeout=None):
        """Read utterance ``utt`` -> ``(signal float32 (num_samples,) in int16 scale, rate Hz)``.

        With ``segments`` the recording is read (once for consecutive segments of the same recording)
        and cut to ``[start_s, end_s)``; an end up to 0.5 s past the recording is clipped, as Kaldi does.
        Errors name ``wav.scp:<line>`` (or ``segments:<line>``).
        """
        from spkrec.io.audio import read_audio
        segments = self.segments
        if segments is None:
            entry, where = self._wav_entry(utt, utt)
            return read_audio(entry, target_rate=target_rate, allow_commands=allow_commands, name=where,
                              command_timeout=command_timeout)
        if utt not in segments:
            raise SpkrecError(f"{self.file('segments')}: utterance {utt!r} has no segment; "
                              "add it to segments")
        rec, start_s, end_s = segments[utt]
        cache = self._last_recording
        if cache is not None and cache[0] == (rec, target_rate):
            signal, rate = cache[1], cache[2]
        else:
            entry, where = self._wav_entry(rec, utt)
            signal, rate = read_audio(entry, target_rate=target_rate, allow_commands=allow_commands,
                                      name=where, command_timeout=command_timeout)
            self._last_recording = ((rec, target_rate), signal, rate)
        start = int(round(start_s * rate))
        end = signal.size if end_s == -1 else int(round(end_s * rate))
        where = f"{self.file('segments')}:{self.line_of('segments', utt)}"
        if end > signal.size:
            if end - signal.size > SEGMENT_OVERSHOOT_S * rate:
                raise SpkrecError(f"{where}: segment ends at {end_s:g} s but recording {rec!r} lasts "
                                  f"{signal.size / rate:.3f} s; fix the end time")
            end = signal.size
        if end <= start:
            raise SpkrecError(f"{where}: segment [{start_s:g}, {end_s:g}] s is empty in recording {rec!r} "
                              f"({signal.size / rate:.3f} s); fix or remove this line")
        return signal[start:end].copy(), rate


def write_data_dir(path, wav_scp, utt2spk, spk2gender=None, segments=None):
    """Write a data dir: ``wav.scp``, ``utt2spk``, ``spk2utt`` and optional ``spk2gender``/``segments``.

    Tables are sorted (C locale) and written atomically. ``segments`` maps
    ``utt -> (recording, start_s, end_s)``. A stale ``segments`` file is removed when none is given.
    Returns a :class:`DataDir`.
    """
    path = os.fspath(path)
    os.makedirs(path, exist_ok=True)
    for key, value in list(wav_scp.items()) + list(utt2spk.items()):
        if not key or any(c.isspace() for c in key) or not str(value).strip():
            raise SpkrecError(f"{path}: bad key/value {key!r} {value!r} (ids must be non-empty without "
                              "whitespace); fix the corpus preparation")
    write_table(os.path.join(path, "wav.scp"), wav_scp)
    write_table(os.path.join(path, "utt2spk"), utt2spk)
    write_table(os.path.join(path, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    if spk2gender is not None:
        write_table(os.path.join(path, "spk2gender"), spk2gender)
    seg_path = os.path.join(path, "segments")
    if segments is not None:
        write_table(seg_path, {u: f"{r} {_fmt_time(s)} {_fmt_time(e)}" for u, (r, s, e) in segments.items()})
    elif os.path.exists(seg_path):
        os.remove(seg_path)
    return DataDir(path)


def _fmt_time(t):
    """Seconds as Kaldi writes them: ``-1`` stays ``-1``, else up to 3 decimals without trailing zeros."""
    return "-1" if t == -1 else ("%.3f" % t).rstrip("0").rstrip(".")


# ----------------------------------------------------------------------------- validation

def _check_audio_chunk(items, decode=False):
    """Worker: ``[(where, path)]`` -> problems of files that are missing, do not open, are truncated or
    (``decode``) do not decode completely to finite samples."""
    import soundfile as sf

    from spkrec.io.audio import declared_wav_frames, read_audio
    from spkrec.io.command import is_command
    problems = []
    for where, entry in items:
        if is_command(entry):
            continue  # a command: checked only when run (needs allow_commands)
        if not os.path.exists(entry):
            problems.append(f"{where}: audio file not found: {entry}; fix the path or remove the entry")
            continue
        if decode:
            try:
                read_audio(entry, name=where)
            except SpkrecError as err:
                problems.append(str(err))
            continue
        try:
            info = sf.info(entry)
            with open(entry, "rb") as f:
                declared = declared_wav_frames(f)
            if info.frames <= 0:
                problems.append(f"{where}: audio file {entry} has no samples; remove the entry")
            elif declared is not None and declared > info.frames:
                problems.append(f"{where}: audio {entry!r} is truncated: its header says {declared} samples, "
                                f"only {info.frames} are in the file; replace it with a complete file or remove "
                                "the entry")
        except Exception as exc:
            problems.append(f"{where}: audio file {entry} does not open ({str(exc).splitlines()[0][:100]}); "
                            "replace it with a complete WAV/FLAC/SPHERE file or remove the entry")
    return problems


def validate_data_dir(path, check_audio=True, nj=1, warnings=None, decode=False):
    """Check a data dir; returns a list of problems, each ``"file:line: problem; what to do"``.

    Checks: every table parses (field counts, no blank lines), unique keys, C-locale sorting,
    ``utt2spk``/``spk2utt`` agree, every utterance has audio (``wav.scp`` or ``segments`` ->
    ``wav.scp``) and vice versa, ``spk2gender`` covers every speaker with ``m``/``f``,
    ``feats.scp``/``vad.scp``/``utt2num_frames`` keys equal the utterances, and (``check_audio``) every
    audio file exists and opens (``soundfile.info``; a WAV shorter than its header says is truncated),
    or with ``decode`` decodes completely to finite samples (every file read, in ``nj`` parallel jobs). Utterance ids that do not
    start with their speaker id are *warnings* (appended to ``warnings`` when a list is given, else
    logged), as in Kaldi.
    """
    from spkrec.parallel import ParallelConfig, map_chunks
    path = os.fspath(path)
    problems = []
    if not os.path.isdir(path):
        return [f"{path}: not a directory; give a data dir (with wav.scp, utt2spk, spk2utt)"]
    f = lambda name: os.path.join(path, name)  # noqa: E731
    tables, lines = {}, {}
    for name, (lo, hi, _) in TABLES.items():
        if name in ("utt2dur", "text", "reco2dur"):
            continue
        if not os.path.exists(f(name)):
            if name in ("wav.scp", "utt2spk"):
                problems.append(f"{f(name)}: file not found; create it (e.g. `spkrec prepare-data`)")
            elif name == "spk2utt":
                problems.append(f"{f(name)}: file not found; create it from utt2spk "
                                "(`spkrec subset-data-dir` or utils/utt2spk_to_spk2utt.pl)")
            continue
        tables[name], lines[name] = _parse_table(f(name), lo, hi, name, problems=problems, check_sorted=True)

    utt2spk = tables.get("utt2spk", {})
    utts = set(utt2spk)

    def where(name, key):
        return f"{f(name)}:{lines[name][key]}"

    # utt2spk <-> spk2utt
    if "spk2utt" in tables:
        listed = {}
        for spk, value in tables["spk2utt"].items():
            spk_utts = value.split()
            if spk_utts != sorted(spk_utts):
                problems.append(f"{where('spk2utt', spk)}: utterances of speaker {spk!r} are not sorted; "
                                "regenerate spk2utt from utt2spk")
            for u in spk_utts:
                if u in listed:
                    problems.append(f"{where('spk2utt', spk)}: utterance {u!r} listed again (first under "
                                    f"speaker {listed[u]!r}); regenerate spk2utt from utt2spk")
                    continue
                listed[u] = spk
                if u not in utt2spk:
                    problems.append(f"{where('spk2utt', spk)}: utterance {u!r} of speaker {spk!r} is not in "
                                    "utt2spk; regenerate spk2utt from utt2spk")
                elif utt2spk[u] != spk:
                    problems.append(f"{where('spk2utt', spk)}: utterance {u!r} is under speaker {spk!r} but "
                                    f"utt2spk says {utt2spk[u]!r}; regenerate spk2utt from utt2spk")
        for u in c_sorted(utts - set(listed)):
            problems.append(f"{where('utt2spk', u)}: utterance {u!r} (speaker {utt2spk[u]!r}) is missing "
                            "from spk2utt; regenerate spk2utt from utt2spk")

    # speaker-prefixed utterance ids (a warning, as in Kaldi)
    unprefixed = [u for u in c_sorted(utts) if not u.startswith(utt2spk[u])]
    if unprefixed:
        u = unprefixed[0]
        more = f" (and {len(unprefixed) - 1} more)" if len(unprefixed) > 1 else ""
        msg = (f"{where('utt2spk', u)}: utterance id {u!r} does not start with its speaker id "
               f"{utt2spk[u]!r}{more}; Kaldi tools expect speaker-prefixed utterance ids "
               "(<spk>-<utt>) so that sorting by utterance also groups speakers")
        if warnings is not None:
            warnings.append(msg)
        else:
            log.warning("%s", msg)

    # utterances <-> audio
    wav = tables.get("wav.scp")
    if "segments" in tables:
        seg = tables["segments"]
        for u in c_sorted(utts - set(seg)):
            problems.append(f"{where('utt2spk', u)}: utterance {u!r} has no line in segments; add one or "
                            "remove the utterance")
        for u, value in seg.items():
            if u not in utts:
                problems.append(f"{where('segments', u)}: segment {u!r} is not in utt2spk; add it to "
                                "utt2spk or remove the segment")
            try:
                rec, _, _ = _parse_segment(value, where("segments", u))
            except SpkrecError as err:
                problems.append(str(err))
                continue
            if wav is not None and "wav.scp" in lines and rec not in wav:
                problems.append(f"{where('segments', u)}: recording {rec!r} is not in wav.scp; add it "
                                "or remove the segment")
    elif wav is not None and "wav.scp" in lines:
        for u in c_sorted(utts - set(wav)):
            problems.append(f"{where('utt2spk', u)}: utterance {u!r} has no audio in wav.scp; add it or "
                            "remove the utterance")
        for u in wav:
            if u not in utts:
                problems.append(f"{where('wav.scp', u)}: utterance {u!r} is not in utt2spk; add it or remove "
                                "this line")

    # speakers' gender
    if "spk2gender" in tables:
        speakers = set(utt2spk.values())
        for spk, g in tables["spk2gender"].items():
            if g not in ("m", "f"):
                problems.append(f"{where('spk2gender', spk)}: gender {g!r} is not 'm' or 'f'; fix this line")
            if spk not in speakers:
                problems.append(f"{where('spk2gender', spk)}: speaker {spk!r} has no utterances in utt2spk; "
                                "remove this line")
        for spk in c_sorted(speakers - set(tables["spk2gender"])):
            problems.append(f"{f('spk2gender')}: speaker {spk!r} has no gender; add a '<spk> m|f' line")

    # per-utterance feature tables
    for name in ("feats.scp", "vad.scp", "utt2num_frames"):
        if name not in tables:
            continue
        keys = set(tables[name])
        for u in c_sorted(keys - utts):
            problems.append(f"{where(name, u)}: utterance {u!r} is not in utt2spk; recompute {name} "
                            "or remove this line")
        missing = c_sorted(utts - keys)
        if missing:
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            problems.append(f"{f(name)}: utterance {missing[0]!r}{more} of utt2spk has no entry; recompute "
                            f"{name} (`spkrec compute-feats`/`compute-vad`) or subset the data dir")
        if name != "utt2num_frames":
            from spkrec.io.command import is_command, refuse_command
            for u, v in tables[name].items():
                if is_command(v):
                    problems.append(str(refuse_command(v, where(name, u), name)))
        if name == "utt2num_frames":
            for u, v in tables[name].items():
                if not v.isdigit():
                    problems.append(f"{where(name, u)}: {v!r} is not a frame count; recompute features")

    # audio files exist and open
    if check_audio and wav:
        items = [(where("wav.scp", k), v) for k, v in wav.items()]
        for chunk_problems in map_chunks(_check_audio_chunk, items, ParallelConfig(nj=nj), decode=decode,
                                         desc="checking audio" if len(items) > 2000 or decode else None):
            problems.extend(chunk_problems)
    return problems


# ----------------------------------------------------------------------------- subsets

def subset_data_dir(src, dest, utts=None, spks=None, first_per_spk=None, last_per_spk=None):
    """Copy data dir ``src`` to ``dest`` restricted to a subset of utterances.

    Give exactly one of: ``utts`` (iterable of utterance ids), ``spks`` (speaker ids),
    ``first_per_spk``/``last_per_spk`` (the first/last N utterances of every speaker, by sorted id).
    Every table present (wav.scp, utt2spk, spk2utt, spk2gender, segments, feats.scp, vad.scp,
    utt2num_frames, utt2dur, text, reco2dur) is restricted accordingly. Unknown ids raise
    :class:`SpkrecError`. Returns the new :class:`DataDir`.
    """
    given = [x is not None for x in (utts, spks, first_per_spk, last_per_spk)]
    if sum(given) != 1:
        raise SpkrecError("subset: give exactly one of an utterance list, a speaker list, "
                          "--first-utts-per-spk or --last-utts-per-spk")
    data = src if isinstance(src, DataDir) else DataDir(src)
    utt2spk, spk2utt = data.utt2spk, utt2spk_to_spk2utt(data.utt2spk)
    if utts is not None:
        keep = set(utts)
        unknown = c_sorted(keep - set(utt2spk))
        if unknown:
            raise SpkrecError(f"{data.file('utt2spk')}: utterance {unknown[0]!r} (of {len(unknown)} unknown) "
                              "is not in this data dir; fix the utterance list")
    elif spks is not None:
        spks = set(spks)
        unknown = c_sorted(spks - set(spk2utt))
        if unknown:
            raise SpkrecError(f"{data.file('utt2spk')}: speaker {unknown[0]!r} (of {len(unknown)} unknown) "
                              "has no utterances in this data dir; fix the speaker list")
        keep = {u for s in spks for u in spk2utt[s]}
    else:
        n = first_per_spk if first_per_spk is not None else last_per_spk
        if int(n) < 1:
            raise SpkrecError(f"subset: the number of utterances per speaker must be >= 1, got {n}")
        n = int(n)
        keep = {u for s, us in spk2utt.items() for u in (us[:n] if first_per_spk is not None else us[-n:])}
    if not keep:
        raise SpkrecError(f"{data.path}: the subset is empty; check the list")
    return write_subset(data, dest, keep)


def write_subset(data, dest, keep):
    """Write data dir ``data`` restricted to the utterances ``keep`` (a set) to ``dest``; returns its DataDir."""
    dest = os.fspath(dest)
    if os.path.abspath(dest) == os.path.abspath(data.path):
        raise SpkrecError(f"{dest}: the subset's destination is its source; choose another directory")
    os.makedirs(dest, exist_ok=True)
    utt2spk = {u: s for u, s in data.utt2spk.items() if u in keep}
    speakers = set(utt2spk.values())
    recordings = None
    if data.segments is not None:
        recordings = {data.segments[u][0] for u in keep if u in data.segments}
    for name, (lo, hi, keyed) in TABLES.items():
        out = os.path.join(dest, name)
        if name == "spk2utt":
            write_table(out, utt2spk_to_spk2utt(utt2spk))
            continue
        if not data.has(name):
            if os.path.exists(out):
                os.remove(out)  # no stale table from an earlier subset
            continue
        table = read_table(data.file(name), lo, hi, name)
        if keyed == "spk":
            wanted = speakers
        elif keyed == "rec" and recordings is not None:
            wanted = recordings
        else:
            wanted = keep
        write_table(out, {k: v for k, v in table.items() if k in wanted})
    return DataDir(dest)


# ----------------------------------------------------------------------------- combining

def combine_data_dirs(dest, sources):
    """Combine data dirs into ``dest`` (Kaldi's ``utils/combine_data.sh``).

    Each table is kept only when every source has it (a partial ``feats.scp`` would silently drop
    utterances); ``spk2utt`` is rebuilt. A key (utterance, speaker with conflicting gender, or
    recording) that appears in two sources with different values raises :class:`SpkrecError`.
    Returns the new :class:`DataDir`.
    """
    dirs = [s if isinstance(s, DataDir) else DataDir(s) for s in sources]
    if not dirs:
        raise SpkrecError("combine: give at least one source data dir")
    dest = os.fspath(dest)
    if any(os.path.abspath(dest) == os.path.abspath(d.path) for d in dirs):
        raise SpkrecError(f"{dest}: the destination is one of the sources; choose another directory")
    os.makedirs(dest, exist_ok=True)
    for name, (lo, hi, _) in TABLES.items():
        out = os.path.join(dest, name)
        if name == "spk2utt":
            continue
        if not all(d.has(name) for d in dirs):
            if os.path.exists(out):
                os.remove(out)
            continue
        merged = {}
        for d in dirs:
            for key, value in read_table(d.file(name), lo, hi, name).items():
                if key in merged and merged[key] != value:
                    raise SpkrecError(f"{d.file(name)}: key {key!r} also appears in another source with a "
                                      "different value; make the ids unique (e.g. prefix them per corpus)")
                merged[key] = value
        write_table(out, merged)
    utt2spk = read_table(os.path.join(dest, "utt2spk"), 2, 2, "utt2spk")
    write_table(os.path.join(dest, "spk2utt"), utt2spk_to_spk2utt(utt2spk))
    return DataDir(dest)
