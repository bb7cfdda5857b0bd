"""Corpus preparation: write a Kaldi-style data dir (``wav.scp`` with absolute paths, ``utt2spk``,
``spk2utt``, ``spk2gender``) for TIMIT, so762, LibriSpeech, VoxCeleb1 and FSDD (with ``text``).

Utterance ids always start with the speaker id (Kaldi's convention, so that sorting by utterance also
groups speakers):

- timit: ``<SPK>_<UTT>`` upper-cased, e.g. ``FVMH0_SA1``
- so762: ``<spk>-<utt>``, e.g. ``0001-000010011`` (the corpus's own ids are not speaker-prefixed)
- librispeech: ``<spk>-<chapter>-<utt>`` (the file name)
- voxceleb1: ``<id>-<video>-<n>``, e.g. ``id10270-x6uYqmx31kE-00001``
- fsdd: the corpus's own ``<spk>_<digit>_<rep>``, e.g. ``george_0_00``
"""
import logging
import os
import re

from spkrec.errors import SpkrecError
from spkrec.io.datadir import c_sorted, read_table, write_data_dir, write_table
from spkrec.io.text import utf8_lines
from spkrec.io.trials import write_trials

log = logging.getLogger("spkrec")

CORPORA = ("timit", "so762", "librispeech", "voxceleb1", "fsdd")


def _children(path):
    """``{lower-cased name: real name}`` of a directory's entries (any letter case on disk)."""
    try:
        names = os.listdir(path)
    except OSError:
        return {}
    return {n.lower(): n for n in sorted(names)}


def _child(path, name):
    """Path of entry ``name`` in ``path`` matched case-insensitively, or ``None``."""
    real = _children(path).get(name.lower())
    return os.path.join(path, real) if real is not None else None


def _subdirs(path):
    return [os.path.join(path, n) for n in sorted(os.listdir(path)) if os.path.isdir(os.path.join(path, n))]


def _check_dir(src, what):
    src = os.path.abspath(os.fspath(src))
    if not os.path.isdir(src):
        raise SpkrecError(f"{src}: directory not found; give the {what} corpus directory")
    return src


# ----------------------------------------------------------------------------- TIMIT

_TIMIT_UTT = re.compile(r"^(s[aix]\d+)\.wav$", re.IGNORECASE)
_TIMIT_SPK = re.compile(r"^[fm][a-z]{3}\d$", re.IGNORECASE)


def _timit_root(src):
    for cand in (src, _child(src, "timit"), _child(src, "data")):
        if cand and (_child(cand, "train") or _child(cand, "test")):
            return cand
    raise SpkrecError(f"{src}: no TRAIN or TEST folder (any case) here or in {src}/TIMIT; "
                      "give the TIMIT directory of the LDC layout TRAIN|TEST/DR<n>/<spk>/<utt>.WAV")


def read_timit_spkrinfo(path):
    """``DOC/SPKRINFO.TXT`` -> ``{(sex, id): sex}`` and ``{id: [sex, ...]}`` (``;`` lines are comments).

    The ID column lacks the sex letter (speaker folder ``FVMH0`` is ``VMH0  F`` there).
    """
    by_id = {}
    with open(path, encoding="latin-1") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            fields = line.split()
            if len(fields) < 2 or fields[1].upper() not in ("M", "F"):
                raise SpkrecError(f"{path}:{lineno}: expected 'ID Sex DR Use ...' with Sex M or F; "
                                  "fix the line or remove SPKRINFO.TXT")
            by_id.setdefault(fields[0].upper(), []).append(fields[1].lower())
    return by_id


def prepare_timit(src, dest, sets=None):
    """TIMIT (LDC layout ``TRAIN|TEST/DR<n>/<spk>/<utt>.WAV``, NIST SPHERE, any letter case) -> data dir.

    ``sets``: iterable of ``"train"``/``"test"`` (default: those present), written together into
    ``dest``. Gender comes from ``DOC/SPKRINFO.TXT`` when present, else from the first letter of the
    speaker folder. Utterance ids are ``<SPK>_<UTT>`` upper-cased. Returns the :class:`DataDir`.
    """
    src = _check_dir(src, "TIMIT")
    root = _timit_root(src)
    present = {k: v for k, v in _children(root).items() if k in ("train", "test")}
    if sets is None:
        sets = sorted(present)
    sets = [s.lower() for s in sets]
    for s in sets:
        if s not in ("train", "test"):
            raise SpkrecError(f"timit: unknown set {s!r}; use train, test or train,test")
        if s not in present:
            raise SpkrecError(f"{root}: no {s.upper()} folder (any case); drop {s} from --sets")
    spkrinfo = None
    doc = _child(root, "doc")
    info_path = _child(doc, "spkrinfo.txt") if doc else None
    if info_path:
        spkrinfo = read_timit_spkrinfo(info_path)
    wav_scp, utt2spk, spk2gender = {}, {}, {}
    for s in sets:
        for dr in _subdirs(os.path.join(root, present[s])):
            if not re.match(r"^dr\d+$", os.path.basename(dr), re.IGNORECASE):
                continue
            for spk_dir in _subdirs(dr):
                spk_name = os.path.basename(spk_dir)
                if not _TIMIT_SPK.match(spk_name):
                    log.warning("%s: not a TIMIT speaker folder (<F|M><3 letters><digit>); skipped", spk_dir)
                    continue
                spk = spk_name.upper()
                if spk in spk2gender:
                    raise SpkrecError(f"{spk_dir}: speaker {spk} appears twice in the corpus; "
                                      "remove one copy")
                spk2gender[spk] = _timit_gender(spk, spkrinfo, info_path)
                for name in sorted(os.listdir(spk_dir)):
                    m = _TIMIT_UTT.match(name)
                    if not m:
                        continue
                    utt = f"{spk}_{m.group(1).upper()}"
                    path = os.path.join(spk_dir, name)
                    if utt in wav_scp:
                        raise SpkrecError(f"{path}: utterance {utt} also at {wav_scp[utt]} (names "
                                          "differing only in letter case); keep one")
                    wav_scp[utt] = path
                    utt2spk[utt] = spk
    if not wav_scp:
        raise SpkrecError(f"{root}: no <UTT>.WAV files under {'/'.join(sets).upper()}/DR<n>/<spk>/; "
                          "check the path")
    spk2gender = {s: g for s, g in spk2gender.items() if s in set(utt2spk.values())}
    return write_data_dir(dest, wav_scp, utt2spk, spk2gender)


def _timit_gender(spk, spkrinfo, info_path):
    folder_sex = spk[0].lower()
    if spkrinfo is None:
        return folder_sex
    sexes = spkrinfo.get(spk[1:])
    if not sexes:
        log.warning("%s: speaker %s (ID %s) not listed; gender %r from the folder name", info_path, spk,
                    spk[1:], folder_sex)
        return folder_sex
    if len(sexes) > 1:  # the same initials for a man and a woman: the folder's letter disambiguates
        return folder_sex if folder_sex in sexes else sexes[0]
    if sexes[0] != folder_sex:
        log.warning("%s: speaker %s has Sex %s but its folder says %s; using SPKRINFO", info_path, spk,
                    sexes[0].upper(), folder_sex.upper())
    return sexes[0]


# ----------------------------------------------------------------------------- so762

def prepare_so762(src, dest):
    """so762 layout (``WAVE/SPEAKER<spk>/<utt>.flac``, ``utt2spk``, ``spk2gender``) -> data dir.

    Utterance ids become ``<spk>-<utt>`` (speaker-prefixed, as Kaldi requires); ``spk2gender`` is kept.
    Every utterance of the corpus's ``utt2spk`` must have its FLAC file.
    """
    src = _check_dir(src, "so762")
    utt2spk_path = os.path.join(src, "utt2spk")
    lines = {}
    corpus_utt2spk = read_table(utt2spk_path, 2, 2, "utt2spk", line_numbers=lines)
    wave = _child(src, "WAVE")
    if wave is None:
        raise SpkrecError(f"{src}: no WAVE folder; give the so762 directory (WAVE/SPEAKER<spk>/<utt>.flac)")
    wav_scp, utt2spk = {}, {}
    spk_dirs = {}
    for utt, spk in corpus_utt2spk.items():
        if spk not in spk_dirs:
            spk_dirs[spk] = _child(wave, f"SPEAKER{spk}")
        path = _child(spk_dirs[spk], f"{utt}.flac") if spk_dirs[spk] else None
        if path is None:
            raise SpkrecError(f"{utt2spk_path}:{lines[utt]}: no audio {wave}/SPEAKER{spk}/{utt}.flac; "
                              "restore the file or remove this line")
        wav_scp[f"{spk}-{utt}"] = path
        utt2spk[f"{spk}-{utt}"] = spk
    listed = sum(1 for d in spk_dirs.values() if d for n in os.listdir(d) if n.lower().endswith(".flac"))
    if listed > len(wav_scp):
        log.warning("%s: %d FLAC files are not in utt2spk; left out", wave, listed - len(wav_scp))
    spk2gender = None
    gender_path = os.path.join(src, "spk2gender")
    if os.path.exists(gender_path):
        glines = {}
        genders = read_table(gender_path, 2, 2, "spk2gender", line_numbers=glines)
        spk2gender = {}
        for spk in set(utt2spk.values()):
            g = genders.get(spk, "").lower()
            if g not in ("m", "f"):
                raise SpkrecError(f"{gender_path}: speaker {spk!r} has no m/f gender; add a '{spk} m|f' line")
            spk2gender[spk] = g
    return write_data_dir(dest, wav_scp, utt2spk, spk2gender)


# ----------------------------------------------------------------------------- LibriSpeech

_LIBRI_FILE = re.compile(r"^(\d+)-(\d+)-(\d+)\.flac$", re.IGNORECASE)


def read_librispeech_speakers(path):
    """``SPEAKERS.TXT`` (``ID | SEX | SUBSET | MINUTES | NAME``, ``;`` comments) -> ``{id: "m"|"f"}``."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith(";"):
                continue
            fields = [x.strip() for x in line.split("|", 4)]  # names may contain '|'
            if len(fields) < 2 or fields[1].upper() not in ("M", "F"):
                raise SpkrecError(f"{path}:{lineno}: expected 'ID | SEX | SUBSET | MINUTES | NAME' with "
                                  "SEX M or F; fix the line")
            out[fields[0]] = fields[1].lower()
    return out


def prepare_librispeech(src, dest):
    """LibriSpeech (``<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` under ``src``, at any depth, so a
    subset folder or the root holding several subsets both work) -> data dir.

    Gender from ``SPEAKERS.TXT`` in ``src`` or its parent when present (speakers missing there are an
    error); without it no ``spk2gender`` is written.
    """
    src = _check_dir(src, "LibriSpeech")
    wav_scp, utt2spk = {}, {}
    for dirpath, dirnames, filenames in os.walk(src, followlinks=True):
        dirnames.sort()
        for name in sorted(filenames):
            m = _LIBRI_FILE.match(name)
            if not m:
                continue
            spk, chapter, _ = m.groups()
            parent, folder_chapter = os.path.split(dirpath)
            if folder_chapter != chapter or os.path.basename(parent) != spk:
                raise SpkrecError(f"{os.path.join(dirpath, name)}: not under {spk}/{chapter}/; "
                                  "keep the LibriSpeech layout <spk>/<chapter>/<spk>-<chapter>-<utt>.flac")
            utt = name[:-len(".flac")]
            if utt in wav_scp:
                raise SpkrecError(f"{os.path.join(dirpath, name)}: utterance {utt} also at {wav_scp[utt]}; "
                                  "prepare each subset once")
            wav_scp[utt] = os.path.join(dirpath, name)
            utt2spk[utt] = spk
    if not wav_scp:
        raise SpkrecError(f"{src}: no <spk>/<chapter>/<spk>-<chapter>-<utt>.flac files; give a LibriSpeech "
                          "subset folder (e.g. LibriSpeech/train-clean-100)")
    spk2gender = None
    for cand in (src, os.path.dirname(src)):
        info = _child(cand, "SPEAKERS.TXT")
        if info:
            genders = read_librispeech_speakers(info)
            missing = sorted(set(utt2spk.values()) - set(genders))
            if missing:
                raise SpkrecError(f"{info}: speaker {missing[0]} (of {len(missing)}) is not listed; "
                                  "use the SPEAKERS.TXT of this corpus copy")
            spk2gender = {s: genders[s] for s in set(utt2spk.values())}
            break
    return write_data_dir(dest, wav_scp, utt2spk, spk2gender)


# ----------------------------------------------------------------------------- VoxCeleb1

def _voxceleb_wav_root(src):
    wav = _child(src, "wav")
    if wav and os.path.isdir(wav):
        return wav
    if any(re.match(r"^id\d+$", n) for n in os.listdir(src)):
        return src
    raise SpkrecError(f"{src}: no wav/ folder and no id<NNNNN> speaker folders; give the VoxCeleb1 directory "
                      "(wav/<id>/<video>/<n>.wav)")


def read_voxceleb_meta(path):
    """``vox1_meta.csv`` (tab-separated: VoxCeleb1 ID, VGGFace1 ID, Gender, Nationality, Set)
    -> ``{id: "m"|"f"}``."""
    out = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            fields = [x.strip() for x in line.split("\t")]
            if len(fields) >= 3 and re.match(r"^id\d+$", fields[0]) and fields[2].lower() in ("m", "f"):
                out[fields[0]] = fields[2].lower()
    return out


def prepare_voxceleb1(src, dest, trials_path=None):
    """VoxCeleb1 (``wav/<id>/<video>/<n>.wav``) -> data dir with utterance ids ``<id>-<video>-<n>``.

    Gender from ``vox1_meta.csv`` in ``src`` when present. With ``trials_path`` (the official list:
    ``1 id10270/x6uYqmx31kE/00001.wav id10270/8jEAjG6SegY/00008.wav`` = label 1/0, enrolment utterance,
    test utterance) ``dest/trials`` is written as ``<enroll-utt-id> <test-utt-id> target|nontarget``
    in the list's order. Note: enrolment ids there are **utterance** ids (single-utterance enrolment),
    not speaker ids. Every listed file must be in the data dir.
    """
    src = _check_dir(src, "VoxCeleb1")
    root = _voxceleb_wav_root(src)
    wav_scp, utt2spk = {}, {}
    for spk_dir in _subdirs(root):
        spk = os.path.basename(spk_dir)
        for video_dir in _subdirs(spk_dir):
            video = os.path.basename(video_dir)
            for name in sorted(os.listdir(video_dir)):
                if not name.lower().endswith(".wav"):
                    continue
                utt = f"{spk}-{video}-{name[:-4]}"
                wav_scp[utt] = os.path.join(video_dir, name)
                utt2spk[utt] = spk
    if not wav_scp:
        raise SpkrecError(f"{root}: no <id>/<video>/<n>.wav files; check the path")
    spk2gender = None
    meta = _child(src, "vox1_meta.csv")
    if meta:
        genders = read_voxceleb_meta(meta)
        if set(utt2spk.values()) <= set(genders):
            spk2gender = {s: genders[s] for s in set(utt2spk.values())}
        else:
            log.warning("%s: some speakers have no gender; spk2gender not written", meta)
    data = write_data_dir(dest, wav_scp, utt2spk, spk2gender)
    if trials_path is not None:
        rows = convert_voxceleb_trials(trials_path, set(wav_scp))
        write_trials(os.path.join(os.fspath(dest), "trials"), rows)
    return data


def _voxceleb_utt(rel, path, lineno, known):
    parts = rel.replace("\\", "/").split("/")
    if len(parts) != 3 or not parts[2].lower().endswith(".wav"):
        raise SpkrecError(f"{path}:{lineno}: {rel!r} is not <id>/<video>/<n>.wav; fix this line")
    utt = f"{parts[0]}-{parts[1]}-{parts[2][:-4]}"
    if utt not in known:
        raise SpkrecError(f"{path}:{lineno}: {rel} is not in the prepared data (no file wav/{rel}); "
                          "use the trial list of this corpus copy or restore the file")
    return utt


def convert_voxceleb_trials(path, known_utts):
    """Official VoxCeleb1 trial list -> ``[(enroll_utt, test_utt, is_target)]``; every file must be
    in ``known_utts`` (utterance ids ``<id>-<video>-<n>``)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: trial list not found; give the official list (e.g. veri_test2.txt)")
    rows = []
    for lineno, line in utf8_lines(path):
        fields = line.split()
        if not fields:
            raise SpkrecError(f"{path}:{lineno}: blank line in the trial list; remove it")
        if len(fields) != 3 or fields[0] not in ("0", "1"):
            raise SpkrecError(f"{path}:{lineno}: expected '<1|0> <id>/<video>/<n>.wav "
                              f"<id>/<video>/<n>.wav', got {line.strip()[:80]!r}; fix this line")
        rows.append((_voxceleb_utt(fields[1], path, lineno, known_utts),
                     _voxceleb_utt(fields[2], path, lineno, known_utts), fields[0] == "1"))
    return rows


# ----------------------------------------------------------------------------- FSDD (text-dependent)

TD_KINDS = ("target", "impostor_correct", "target_wrong", "impostor_wrong")
"""Text-dependent trial kinds (RSR2015): target speaker / correct phrase (the only targets), impostor /
correct phrase, target speaker / wrong phrase, impostor / wrong phrase."""


def td_model_id(speaker, phrase):
    """Id of the model of ``speaker`` saying ``phrase``: ``<speaker>-<phrase>`` (spaces of the phrase -> ``_``)."""
    return f"{speaker}-{'_'.join(str(phrase).split())}"


def prepare_fsdd(src, dest):
    """Free Spoken Digit Dataset layout (``WAVE/<spk>/<utt>.flac``, ``utt2spk``, ``text``, ``spk2gender``)
    -> data dir with ``text`` (the phrase of each utterance: the digit as a word)."""
    src = _check_dir(src, "fsdd")
    utt2spk_path, text_path = os.path.join(src, "utt2spk"), os.path.join(src, "text")
    lines = {}
    corpus_utt2spk = read_table(utt2spk_path, 2, 2, "utt2spk", line_numbers=lines)
    tlines = {}
    text = read_table(text_path, 2, None, "text", line_numbers=tlines)
    wave = _child(src, "WAVE")
    if wave is None:
        raise SpkrecError(f"{src}: no WAVE folder; give the fsdd directory (WAVE/<spk>/<spk>_<digit>_<n>.flac)")
    wav_scp = {}
    for utt, spk in corpus_utt2spk.items():
        if not utt.startswith(spk):
            raise SpkrecError(f"{utt2spk_path}:{lines[utt]}: utterance {utt!r} does not start with its speaker "
                              f"id {spk!r} (Kaldi's sorting needs it); fix the line")
        spk_dir = _child(wave, spk)
        path = _child(spk_dir, f"{utt}.flac") if spk_dir else None
        if path is None:
            raise SpkrecError(f"{utt2spk_path}:{lines[utt]}: no audio {wave}/{spk}/{utt}.flac; "
                              "restore the file or remove this line")
        if utt not in text:
            raise SpkrecError(f"{text_path}: no phrase for utterance {utt!r} (utt2spk line {lines[utt]}); "
                              "add a '<utt> <phrase>' line")
        wav_scp[utt] = path
    extra = sorted(set(text) - set(corpus_utt2spk))
    if extra:
        raise SpkrecError(f"{text_path}:{tlines[extra[0]]}: utterance {extra[0]!r} is not in utt2spk "
                          f"({len(extra)} such lines); remove them or add them to utt2spk")
    spk2gender = None
    gender_path = os.path.join(src, "spk2gender")
    if os.path.exists(gender_path):
        genders = read_table(gender_path, 2, 2, "spk2gender")
        spk2gender = {s: genders[s] for s in set(corpus_utt2spk.values()) if s in genders}
    data = write_data_dir(dest, wav_scp, corpus_utt2spk, spk2gender)
    write_table(os.path.join(data.path, "text"), {u: text[u] for u in wav_scp})
    return data


def _phrase_groups(data):
    """``{(speaker, phrase): [utt, ...]}`` (utterances sorted by id) from a data dir's utt2spk and text."""
    if not data.has("text"):
        raise SpkrecError(f"{data.file('text')}: file not found; a text-dependent data dir needs the phrase of "
                          "every utterance (`<utt> <phrase>`, e.g. from `spkrec prepare-data fsdd`)")
    text = read_table(data.file("text"), 2, None, "text")
    groups = {}
    for utt in c_sorted(data.utt2spk):
        if utt not in text:
            raise SpkrecError(f"{data.file('text')}: no phrase for utterance {utt!r}; add a '<utt> <phrase>' line")
        groups.setdefault((data.utt2spk[utt], text[utt]), []).append(utt)
    return groups


def make_td_folds(data, out_dir, num_folds=3, num_enroll=5, num_test=None):
    """Leave-speakers-out folds with text-dependent trials of the four kinds (:data:`TD_KINDS`).

    Speakers (sorted) go to fold ``i % num_folds``. Under ``out_dir/fold<k>/`` it writes ``train`` (the
    other speakers: background), ``enroll`` (each held-out speaker's first ``num_enroll`` utterances of
    every phrase, sorted by id), ``enroll_models`` (the same utterances with ``utt2spk`` mapping them to
    their model id :func:`td_model_id`, one model per speaker x phrase, for text-independent systems that
    enrol per ``spk2utt``), ``test`` (the remaining utterances, or the next ``num_test``) and trials in
    ``test/``: every model against every test utterance of the fold in ``trials`` (3 columns,
    ``target`` only for same speaker and phrase), ``trials_<kind>`` for each non-target kind (the targets
    plus that kind's non-targets: what its EER is computed on), and ``trial_kinds`` (``<model> <test>
    <kind>``). Returns ``{fold_dir: {kind: count}}``.
    """
    from spkrec.io.datadir import DataDir, write_subset, utt2spk_to_spk2utt
    data = data if isinstance(data, DataDir) else DataDir(data)
    groups = _phrase_groups(data)
    speakers = sorted({s for s, _ in groups})
    k = int(num_folds)
    if k < 1 or len(speakers) < 2 * k:
        raise SpkrecError(f"make-td-trials: {len(speakers)} speakers in {data.path} cannot make {k} folds of at "
                          "least 2 held-out speakers (impostors come from the other held-out speakers); use "
                          "--num-folds between 1 and half the number of speakers")
    if int(num_enroll) < 1 or (num_test is not None and int(num_test) < 1):
        raise SpkrecError(f"make-td-trials: --num-enroll and --num-test must be >= 1 (got {num_enroll}, {num_test})")
    text = read_table(data.file("text"), 2, None, "text")
    out = {}
    for f in range(k):
        fold = {s for i, s in enumerate(speakers) if i % k == f}
        d = os.path.join(out_dir, f"fold{f}")
        write_subset(data, os.path.join(d, "train"), {u for u, s in data.utt2spk.items() if s not in fold})
        enroll, tests, models = {}, [], []
        for (spk, phrase), utts in groups.items():
            if spk not in fold:
                continue
            if len(utts) < int(num_enroll) + 1:
                raise SpkrecError(f"{data.file('text')}: speaker {spk!r} says {phrase!r} {len(utts)} time(s), fewer "
                                  f"than --num-enroll {num_enroll} + 1 test; lower --num-enroll")
            mid = td_model_id(spk, phrase)
            models.append((mid, spk, phrase))
            enroll.update({u: mid for u in utts[:int(num_enroll)]})
            rest = utts[int(num_enroll):]
            tests.extend(rest if num_test is None else rest[:int(num_test)])
        write_subset(data, os.path.join(d, "enroll"), set(enroll))
        em = write_subset(data, os.path.join(d, "enroll_models"), set(enroll))
        write_table(em.file("utt2spk"), enroll)
        write_table(em.file("spk2utt"), utt2spk_to_spk2utt(enroll))
        if os.path.exists(em.file("spk2gender")):
            os.remove(em.file("spk2gender"))
        write_subset(data, os.path.join(d, "test"), set(tests))
        rows, kinds = [], []
        for mid, spk, phrase in sorted(models):
            for utt in sorted(tests):
                same_spk, same_phrase = data.utt2spk[utt] == spk, text[utt] == phrase
                kind = TD_KINDS[(0 if same_phrase else 2) + (0 if same_spk else 1)]
                rows.append((mid, utt, kind == "target"))
                kinds.append(kind)
        test_dir = os.path.join(d, "test")
        write_trials(os.path.join(test_dir, "trials"), rows)
        for kind in TD_KINDS[1:]:
            write_trials(os.path.join(test_dir, f"trials_{kind}"),
                         [r for r, kd in zip(rows, kinds) if kd in ("target", kind)])
        write_table(os.path.join(test_dir, "trial_kinds"),
                    {f"{r[0]} {r[1]}": kd for r, kd in zip(rows, kinds)}, sort=False)
        out[d] = {kind: kinds.count(kind) for kind in TD_KINDS}
    return out


def prepare_corpus(corpus, src, dest, trials_path=None, sets=None):
    """Dispatch to ``prepare_<corpus>``; ``trials_path`` is for voxceleb1, ``sets`` for timit."""
    corpus = corpus.lower()
    if corpus not in CORPORA:
        raise SpkrecError(f"unknown corpus {corpus!r}; use one of {', '.join(CORPORA)}")
    if trials_path is not None and corpus != "voxceleb1":
        raise SpkrecError(f"--trials is for voxceleb1 only, not {corpus}; use `spkrec make-trials` instead")
    if sets is not None and corpus != "timit":
        raise SpkrecError(f"--sets is for timit only, not {corpus}")
    if corpus == "timit":
        return prepare_timit(src, dest, sets=sets)
    if corpus == "voxceleb1":
        return prepare_voxceleb1(src, dest, trials_path=trials_path)
    return {"so762": prepare_so762, "librispeech": prepare_librispeech, "fsdd": prepare_fsdd}[corpus](src, dest)


__all__ = ["prepare_timit", "prepare_so762", "prepare_librispeech", "prepare_voxceleb1", "prepare_fsdd",
           "prepare_corpus", "convert_voxceleb_trials", "make_td_folds", "td_model_id", "TD_KINDS"]
