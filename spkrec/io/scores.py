"""Score files: ``<enroll-id> <test-id> <score>`` lines; higher score = more likely the same speaker."""
import math
import os

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.atomic import write_lines_atomic
from spkrec.io.text import utf8_lines
from spkrec.io.trials import check_new_pair, read_trials_with_lines


def _show(score):
    return "NaN" if math.isnan(score) else str(score)


def read_scores_with_lines(path):
    """Like :func:`read_scores` but returns ``(rows, line_numbers)``."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: score file not found; run the scoring stage first")
    rows, lines, seen = [], [], {}
    for lineno, line in utf8_lines(path):
        fields = line.split()
        if not fields:
            raise SpkrecError(f"{path}:{lineno}: blank line in score file; remove it")
        if len(fields) != 3:
            raise SpkrecError(f"{path}:{lineno}: expected 3 fields (<enroll-id> <test-id> <score>), got "
                              f"{len(fields)} ({line.strip()[:60]!r}); fix this line")
        try:
            score = float(fields[2])
        except ValueError:
            raise SpkrecError(f"{path}:{lineno}: score {fields[2]!r} is not a number; "
                              "fix this line") from None
        if not math.isfinite(score):
            raise SpkrecError(f"{path}:{lineno}: score is {_show(score)}; re-run the scoring stage "
                              "(a model or vector is probably degenerate; metrics such as Cllr would be "
                              "infinite or undefined)")
        check_new_pair(seen, fields, path, lineno, "score each trial once")
        rows.append((fields[0], fields[1], score))
        lines.append(lineno)
    return rows, lines


def read_scores(path):
    """Read a score file -> list of ``(enroll_id, test_id, score)`` (score a float) in file order.

    Wrong field counts, non-numeric, NaN or infinite scores and repeated pairs raise :class:`SpkrecError`
    naming ``file:line``.
    """
    return read_scores_with_lines(path)[0]


def write_scores(path, rows):
    """Write ``(enroll_id, test_id, score)`` rows atomically as ``"%s %s %.6f"`` in the given order."""
    lines = []
    for enroll, test, score in rows:
        score = float(score)
        if not math.isfinite(score):
            raise SpkrecError(f"{path}: score of trial {enroll} {test} is {_show(score)}; check the model and vectors "
                              "(a degenerate model, a zero vector or a cohort with zero spread)")
        lines.append("%s %s %.6f" % (enroll, test, score))
    write_lines_atomic(path, lines)


def scores_for_trials(scores_path, trials_path):
    """Align a score file with a labelled trials file.

    Returns ``(scores, labels)``: float64 and bool arrays of shape ``(num_trials,)`` in trials-file
    order. Scores of pairs not in the trials file are ignored; a trial without a score raises
    :class:`SpkrecError` naming the trials ``file:line`` and the pair.
    """
    trials, trial_lines = read_trials_with_lines(trials_path, require_labels=True)
    lookup = {(e, t): s for e, t, s in read_scores(scores_path)}
    scores = np.empty(len(trials), dtype=np.float64)
    labels = np.empty(len(trials), dtype=bool)
    for i, (enroll, test, label) in enumerate(trials):
        score = lookup.get((enroll, test))
        if score is None:
            raise SpkrecError(f"{os.fspath(trials_path)}:{trial_lines[i]}: trial {enroll} {test} has no "
                              f"score in {os.fspath(scores_path)}; score every trial of this list")
        scores[i] = score
        labels[i] = label
    return scores, labels


def score_indices(rows):
    """``(models, tests, model_index, test_index)`` of score rows ``(enroll, test, score)``: the distinct ids
    in order of first appearance and each row's int64 index into them."""
    models = list(dict.fromkeys(e for e, _, _ in rows))
    tests = list(dict.fromkeys(t for _, t, _ in rows))
    m_of = {m: i for i, m in enumerate(models)}
    t_of = {t: i for i, t in enumerate(tests)}
    return (models, tests, np.array([m_of[e] for e, _, _ in rows], dtype=np.int64),
            np.array([t_of[t] for _, t, _ in rows], dtype=np.int64))


def cohort_matrix(path, key_field, needed):
    """Cohort scores of ``path`` grouped by the id in ``key_field`` (0: enrolment side, ``<model> <cohort>
    <score>`` lines; 1: test side, ``<cohort> <test> <score>``): ``(ids, (n, C) float64)`` for the ids
    ``needed``, in that order. Every id needs the same number of cohort scores."""
    rows, lines = read_scores_with_lines(path)
    by_id, first_line = {}, {}
    for (a, b, s), ln in zip(rows, lines):
        key = (a, b)[key_field]
        by_id.setdefault(key, []).append(s)
        first_line.setdefault(key, ln)
    for key in needed:
        if key not in by_id:
            side = "model" if key_field == 0 else "test vector"
            raise SpkrecError(f"{path}: no cohort scores for {side} {key!r}; score it against the cohort")
    ids = list(needed)
    sizes = {len(by_id[k]) for k in ids}
    if len(sizes) > 1:
        k = min(ids, key=lambda i: len(by_id[i]))
        raise SpkrecError(f"{path}:{first_line[k]}: {k!r} has {len(by_id[k])} cohort scores, others have "
                          f"{max(sizes)}; score every id against the same cohort")
    return ids, np.array([by_id[k] for k in ids], dtype=np.float64)
