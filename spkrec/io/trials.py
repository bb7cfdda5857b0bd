"""Trial lists: ``<enroll-id> <test-id> target|nontarget`` lines (one per trial).

Enrolment ids are speaker ids (``make-trials``) or, for lists converted from VoxCeleb1, utterance ids.
A "key" without labels (``<enroll-id> <test-id>``) is accepted when ``require_labels=False``.
"""
import os

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.atomic import write_lines_atomic
from spkrec.io.text import utf8_lines

LABELS = {"target": True, "nontarget": False}


def check_new_pair(seen, fields, path, lineno, remedy):
    """Record the ``(enroll, test)`` pair of a trials/score line in ``seen`` ({pair: line}); a pair seen
    before raises :class:`SpkrecError` naming both lines."""
    pair = (fields[0], fields[1])
    if pair in seen:
        raise SpkrecError(f"{path}:{lineno}: trial {pair[0]} {pair[1]} repeats line {seen[pair]}; {remedy}")
    seen[pair] = lineno


def read_trials_with_lines(path, require_labels=True):
    """Like :func:`read_trials` but returns ``(rows, line_numbers)`` (1-based line of each row)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: trials file not found; write it with `spkrec make-trials` or "
                          "`spkrec prepare-data voxceleb1 ... --trials FILE`")
    rows, lines, seen = [], [], {}
    min_fields = 3 if require_labels else 2
    for lineno, line in utf8_lines(path):
        fields = line.split()
        if not fields:
            raise SpkrecError(f"{path}:{lineno}: blank line in trials; remove it")
        if not min_fields <= len(fields) <= 3:
            expect = "3 fields (<enroll-id> <test-id> target|nontarget)" if require_labels else \
                "2 or 3 fields (<enroll-id> <test-id> [target|nontarget])"
            raise SpkrecError(f"{path}:{lineno}: expected {expect}, got {len(fields)} "
                              f"({line.strip()[:60]!r}); fix this line")
        label = None
        if len(fields) == 3:
            if fields[2] not in LABELS:
                raise SpkrecError(f"{path}:{lineno}: trial label {fields[2]!r} is not 'target' or "
                                  "'nontarget'; fix this line")
            label = LABELS[fields[2]]
        check_new_pair(seen, fields, path, lineno, "list each trial once")
        rows.append((fields[0], fields[1], label))
        lines.append(lineno)
    return rows, lines


def read_trials(path, require_labels=True):
    """Read a trials file -> list of ``(enroll_id, test_id, is_target)`` in file order.

    ``is_target`` is ``True``/``False``, or ``None`` for a 2-column key line (allowed only with
    ``require_labels=False``). Malformed lines, unknown labels and repeated pairs raise
    :class:`SpkrecError` naming ``file:line``.
    """
    return read_trials_with_lines(path, require_labels)[0]


def _label_text(label):
    if label is None:
        return None
    if isinstance(label, str):
        if label not in LABELS:
            raise SpkrecError(f"trial label {label!r} is not 'target' or 'nontarget'")
        return label
    return "target" if bool(label) else "nontarget"


def write_trials(path, rows):
    """Write ``(enroll_id, test_id, is_target)`` rows atomically, in the given order.

    ``is_target`` may be a bool, ``"target"``/``"nontarget"`` or ``None`` (writes a 2-column key line).
    """
    lines = []
    for row in rows:
        enroll, test = row[0], row[1]
        label = _label_text(row[2]) if len(row) > 2 else None
        lines.append(f"{enroll} {test}" if label is None else f"{enroll} {test} {label}")
    write_lines_atomic(path, lines)


def make_trials(data, enroll_dir, test_dir, trials_path, num_enroll=3, num_test=None, skip_short=False):
    """Split every speaker's utterances into enrolment and test, and write a full trial list.

    Per speaker (sorted), the first ``num_enroll`` utterances (sorted by id) enrol and the rest (or only
    the next ``num_test``) are tests. Writes the enrolment and test subset data dirs and a trials file
    with every test utterance against every enrolled speaker (``<spk> <test-utt> target|nontarget``,
    sorted). A speaker with fewer than ``num_enroll + 1`` utterances raises :class:`SpkrecError`, or
    is left out with a logged warning when ``skip_short``. Returns the trial rows.
    """
    import logging
    from spkrec.io.datadir import DataDir, c_sorted, utt2spk_to_spk2utt, write_subset
    data = data if isinstance(data, DataDir) else DataDir(data)
    if int(num_enroll) < 1 or (num_test is not None and int(num_test) < 1):
        raise SpkrecError(f"make-trials: --num-enroll and --num-test must be >= 1 "
                          f"(got {num_enroll}, {num_test})")
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    enroll, tests, speakers = set(), [], []
    for spk, utts in spk2utt.items():
        if len(utts) < num_enroll + 1:
            msg = (f"{data.file('utt2spk')}: speaker {spk!r} has {len(utts)} utterance(s), fewer than "
                   f"--num-enroll {num_enroll} + 1 test")
            if not skip_short:
                raise SpkrecError(msg + "; lower --num-enroll or pass --skip-short to leave such "
                                  "speakers out")
            logging.getLogger("spkrec").warning("%s; skipped (--skip-short)", msg)
            continue
        speakers.append(spk)
        enroll.update(utts[:num_enroll])
        rest = utts[num_enroll:]
        tests.extend(rest if num_test is None else rest[:num_test])
    if not speakers:
        raise SpkrecError(f"{data.path}: no speaker has more than {num_enroll} utterances; "
                          "lower --num-enroll")
    write_subset(data, enroll_dir, enroll)
    write_subset(data, test_dir, set(tests))
    rows = [(spk, utt, data.utt2spk[utt] == spk) for spk in speakers for utt in c_sorted(tests)]
    write_trials(trials_path, rows)
    return rows


def make_folds(data, out_dir, num_folds=4, num_enroll=3, rotations=1):
    """Cross-fitting folds of the background speakers, for calibration and fusion trials.

    Speakers (sorted) go to fold ``i % num_folds``. For fold ``k`` it writes under ``out_dir/fold<k>/``:
    ``train`` (every speaker NOT in fold k: what the fold's supervised models train on), and from the
    fold's own speakers ``enroll``, ``test`` and ``test/trials`` as :func:`make_trials` splits them
    (speakers with fewer than ``num_enroll + 1`` utterances left out). Scores of the folds' trials,
    each made by models that never saw its speakers' labels, are pooled into one calibration set.

    ``rotations > 1`` makes up to that many models per speaker instead of one (:func:`rotated_trials`):
    more target trials from the same few utterances. Returns ``[(fold_dir, trial_rows), ...]``.
    """
    from spkrec.io.datadir import DataDir, c_sorted, utt2spk_to_spk2utt, write_subset
    data = data if isinstance(data, DataDir) else DataDir(data)
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    speakers = c_sorted(spk2utt)
    k = int(num_folds)
    if k < 2 or len(speakers) < 2 * k:
        raise SpkrecError(f"make-folds: {len(speakers)} speakers in {data.path} cannot make {k} folds of at "
                          "least 2 speakers; use --num-folds between 2 and half the number of speakers")
    if int(rotations) < 1:
        raise SpkrecError(f"make-folds: --rotations {rotations}; use 1 (one model per speaker) or more")
    out = []
    for f in range(k):
        fold = {s for i, s in enumerate(speakers) if i % k == f}
        d = os.path.join(out_dir, f"fold{f}")
        write_subset(data, os.path.join(d, "train"), {u for u, s in data.utt2spk.items() if s not in fold})
        write_subset(data, os.path.join(d, "all"), {u for u, s in data.utt2spk.items() if s in fold})
        split = (os.path.join(d, "all"), os.path.join(d, "enroll"), os.path.join(d, "test"),
                 os.path.join(d, "test", "trials"))
        if int(rotations) > 1:
            rows = rotated_trials(*split, num_enroll=num_enroll, rotations=int(rotations))
        else:
            orig = os.path.join(d, "enroll", "utt2orig")
            rows = make_trials(*split, num_enroll=num_enroll, skip_short=True)
            if os.path.exists(orig):
                os.remove(orig)  # no stale map from an earlier rotated run
        out.append((d, rows))
    return out


def rotated_trials(data, enroll_dir, test_dir, trials_path, num_enroll=3, rotations=None):
    """Several enrolment models per speaker from a few utterances, with every trial they allow.

    A speaker with ``n > num_enroll`` utterances (sorted) gets models ``<spk>-r<j>`` for ``j <
    min(rotations, n)``, enrolled on utterances ``j, j+1, ..., j+num_enroll-1`` (mod ``n``); each model is
    tried against every utterance of the data dir except its own enrolment utterances (targets: the
    speaker's other utterances). The enrolment dir holds each enrolment utterance once per model, as
    ``<model>-<utt>`` (features shared), with ``utt2orig`` mapping it back; the test dir is all of
    ``data``. Speakers with too few utterances are left out with a warning. Returns the trial rows.
    """
    import logging
    from spkrec.io.datadir import TABLES, DataDir, c_sorted, read_table, utt2spk_to_spk2utt, write_subset, \
        write_table
    data = data if isinstance(data, DataDir) else DataDir(data)
    num_enroll = int(num_enroll)
    if num_enroll < 1:
        raise SpkrecError(f"make-folds: --num-enroll must be >= 1 (got {num_enroll})")
    spk2utt = utt2spk_to_spk2utt(data.utt2spk)
    models = {}                                                       # model -> (speaker, utterances)
    for spk in c_sorted(spk2utt):
        utts = c_sorted(spk2utt[spk])
        if len(utts) < num_enroll + 1:
            logging.getLogger("spkrec").warning(
                "%s: speaker %r has %d utterance(s), fewer than --num-enroll %d + 1 test; skipped",
                data.file("utt2spk"), spk, len(utts), num_enroll)
            continue
        for j in range(min(rotations or len(utts), len(utts))):
            models[f"{spk}-r{j}"] = (spk, [utts[(j + i) % len(utts)] for i in range(num_enroll)])
    if not models:
        raise SpkrecError(f"{data.path}: no speaker has more than {num_enroll} utterances; lower --num-enroll")
    if data.segments is not None:
        raise SpkrecError(f"{data.path}: rotated folds need utterances without segments; use --rotations 1")
    new2orig = {f"{m}-{u}": u for m, (_, utts) in models.items() for u in utts}
    os.makedirs(enroll_dir, exist_ok=True)
    for name, (lo, hi, keyed) in TABLES.items():
        out = os.path.join(enroll_dir, name)
        if name in ("utt2spk", "spk2utt") or not data.has(name):
            if name not in ("utt2spk", "spk2utt") and os.path.exists(out):
                os.remove(out)
            continue
        table = read_table(data.file(name), lo, hi, name)
        if keyed == "spk":
            write_table(out, {m: table[s] for m, (s, _) in models.items() if s in table})
        else:                                    # utterance- (or, without segments, recording-) keyed
            write_table(out, {n: table[u] for n, u in new2orig.items() if u in table})
    utt2model = {f"{m}-{u}": m for m, (_, utts) in models.items() for u in utts}
    write_table(os.path.join(enroll_dir, "utt2spk"), utt2model)
    write_table(os.path.join(enroll_dir, "spk2utt"), utt2spk_to_spk2utt(utt2model))
    write_table(os.path.join(enroll_dir, "utt2orig"), new2orig)
    tested = {u for u, s in data.utt2spk.items() if s in {spk for spk, _ in models.values()}}
    write_subset(data, test_dir, tested)
    rows = [(m, u, data.utt2spk[u] == spk) for m, (spk, utts) in models.items()
            for u in c_sorted(tested) if u not in set(utts)]
    write_trials(trials_path, rows)
    return rows


def trial_indices(trials_path, model_ids, test_ids, model_src=None, test_src=None):
    """Read trials (labels optional) and map them to ``(rows, model_index, test_index)`` (int64 (P,)) into
    ``model_ids`` and ``test_ids``; an unknown id raises :class:`SpkrecError` naming its line and where the
    ids come from (``model_src``, ``test_src``)."""
    rows, lines = read_trials_with_lines(trials_path, require_labels=False)
    m_of = {m: i for i, m in enumerate(model_ids)}
    t_of = {t: i for i, t in enumerate(test_ids)}
    mi, ti = np.empty(len(rows), np.int64), np.empty(len(rows), np.int64)
    for k, (enroll, test, _) in enumerate(rows):
        if enroll not in m_of:
            raise SpkrecError(f"{trials_path}:{lines[k]}: enrolment id {enroll!r} is not a model of "
                              f"{model_src or 'the enrolment set'}; enrol it or use matching trials")
        if test not in t_of:
            raise SpkrecError(f"{trials_path}:{lines[k]}: test id {test!r} has no vector in "
                              f"{test_src or 'the test set'}; extract it or use matching trials")
        mi[k], ti[k] = m_of[enroll], t_of[test]
    return rows, mi, ti


def cohort_trials(left_ids, right_ids):
    """Every left id against every right id, in order: the 2-column key rows ``(left, right, None)`` that
    score a side of score normalisation against a cohort (models x cohort, cohort x tests)."""
    right_ids = list(right_ids)
    return [(a, b, None) for a in left_ids for b in right_ids]
