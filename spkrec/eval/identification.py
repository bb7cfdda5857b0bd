"""Closed-set speaker identification from a score file over all enrolled models.

The score matrix is ``(n_test, n_models)``; the identified speaker of a test utterance is the model
with the highest score. Model ids are speaker ids (the enrolment ids of the score file).
"""
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.datadir import c_sorted


def identification_scores(rows, test_utt2spk, models=None, what="scores"):
    """Arrange ``(model, test, score)`` rows into a full score matrix.

    Parameters
    ----------
    rows : iterable of (enroll_id, test_id, score)
        As :func:`spkrec.io.scores.read_scores` returns.
    test_utt2spk : dict test_id -> speaker id
        The test utterances (rows of the matrix, in this order) and their true speakers.
    models : list of str, optional
        Column order; default: the distinct enrolment ids of ``rows`` sorted.
    what : str
        Name of the score source, for error messages.

    Returns
    -------
    matrix : (n_test, n_models) float64
    true_idx : (n_test,) int64, column of each test utterance's true speaker

    Raises :class:`SpkrecError` when a (model, test) pair is missing or repeated, when ``rows`` name a
    test utterance absent from ``test_utt2spk`` (or an unknown model), when a true speaker has no
    model (open-set data), or for NaN scores.
    """
    rows = list(rows)
    if models is None:
        models = c_sorted({r[0] for r in rows})
    models = list(models)
    tests = list(test_utt2spk)
    if not models or not tests:
        raise SpkrecError(f"{what}: no {'models' if not models else 'test utterances'}; "
                          "identification needs scores of every test utterance against every model")
    col = {m: j for j, m in enumerate(models)}
    row = {t: i for i, t in enumerate(tests)}
    matrix = np.full((len(tests), len(models)), np.nan)
    seen = np.zeros(matrix.shape, dtype=bool)
    for model, test, score in rows:
        j = col.get(model)
        if j is None:
            raise SpkrecError(f"{what}: scores name model {model!r}, which is not among the {len(models)} "
                              "models; score against the enrolled models only")
        i = row.get(test)
        if i is None:
            raise SpkrecError(f"{what}: scores name test utterance {test!r}, which is not in the test "
                              "utt2spk; "
                              "give the utt2spk of the data that was scored")
        if seen[i, j]:
            raise SpkrecError(f"{what}: pair ({model} {test}) is scored twice; keep one score per pair")
        seen[i, j] = True
        matrix[i, j] = score
    if not seen.all():
        i, j = np.argwhere(~seen)[0]
        raise SpkrecError(f"{what}: no score for model {models[j]!r} against test utterance {tests[i]!r} "
                          f"({int((~seen).sum())} of {seen.size} pairs missing); identification needs every "
                          "test utterance scored against every model")
    if np.isnan(matrix).any():
        i, j = np.argwhere(np.isnan(matrix))[0]
        raise SpkrecError(f"{what}: score of ({models[j]} {tests[i]}) is NaN; fix the scoring step")
    true_idx = np.empty(len(tests), dtype=np.int64)
    for i, t in enumerate(tests):
        spk = test_utt2spk[t]
        if spk not in col:
            raise SpkrecError(f"{what}: test utterance {t!r} is spoken by {spk!r}, who has no model; "
                              "closed-set identification needs every test speaker enrolled")
        true_idx[i] = col[spk]
    return matrix, true_idx


def _check(matrix, true_idx):
    matrix = np.asarray(matrix, dtype=np.float64)
    true_idx = np.asarray(true_idx, dtype=np.int64)
    if matrix.ndim != 2 or true_idx.shape != (matrix.shape[0],):
        raise SpkrecError(f"score matrix of shape {matrix.shape} and {true_idx.shape} true indices "
                          "do not match")
    if matrix.shape[0] == 0 or matrix.shape[1] == 0:
        raise SpkrecError("empty score matrix; identification needs test utterances and models")
    if true_idx.min() < 0 or true_idx.max() >= matrix.shape[1]:
        raise SpkrecError(f"true index out of range 0..{matrix.shape[1] - 1}")
    if np.isnan(matrix).any():
        raise SpkrecError("score matrix holds NaN; fix the scoring step")
    return matrix, true_idx


def true_rank(matrix, true_idx):
    """0-based rank of the true model per test row, ``(n_test,)`` int: the number of other models
    scoring ``>=`` it.

    Ties count against the true model (a tie for first place is not a top-1 hit).
    """
    matrix, true_idx = _check(matrix, true_idx)
    true_scores = matrix[np.arange(matrix.shape[0]), true_idx]
    return (matrix >= true_scores[:, None]).sum(axis=1) - 1


def top_k_accuracy(matrix, true_idx, k=1):
    """Fraction of test rows whose true model is among the ``k`` best-scoring models (ties pessimistic)."""
    if k < 1:
        raise SpkrecError(f"top-k needs k >= 1, got {k}")
    return float(np.mean(true_rank(matrix, true_idx) < k))


def predicted_index(matrix):
    """Best-scoring model per test row, ``(n_test,)`` int (first column on ties)."""
    return np.argmax(np.asarray(matrix, dtype=np.float64), axis=1)


def confusion_matrix(matrix, true_idx):
    """``(n_models, n_models)`` int64 counts: row = true model, column = top-1 identified model."""
    matrix, true_idx = _check(matrix, true_idx)
    n = matrix.shape[1]
    flat = true_idx * n + predicted_index(matrix)
    return np.bincount(flat, minlength=n * n).reshape(n, n)
