"""Back-end verbs: train-backend, score-plda, score-cosine, make-cohort-trials, score-norm, train-svm, score-svm.

Vectors are Kaldi vector tables (``ivector.scp``, ``spk_ivector.scp``, supervector scp files); trials are
``<enroll-id> <test-id> [target|nontarget]`` lines and score files ``<enroll-id> <test-id> <score>``.
"""
import logging
import os

import numpy as np

from spkrec.cli.common import add_command_args, positive_float, positive_int
from spkrec.errors import SpkrecError
from spkrec.backend.score_norm import METHODS
from spkrec.io.trials import trial_indices

log = logging.getLogger("spkrec")


# ----------------------------------------------------------------------------------------- helpers
def _labelled_vectors(scp, utt2spk_path, allow_commands=False):
    """Vectors of the utterances listed in both ``scp`` and ``utt2spk``, with their speaker labels."""
    from spkrec.io.datadir import read_table
    from spkrec.io.kaldi_io import read_vectors
    keys, X = read_vectors(scp, allow_commands)
    utt2spk = read_table(utt2spk_path, min_fields=2, max_fields=2, what="utt2spk")
    keep = [i for i, k in enumerate(keys) if k in utt2spk]
    have = set(keys)
    missing = [u for u in utt2spk if u not in have]
    if missing:
        log.warning("%d utterances of %s have no vector in %s (e.g. %s); using the others",
                    len(missing), utt2spk_path, scp, missing[0])
    if not keep:
        raise SpkrecError(f"{scp}: no vector key appears in {utt2spk_path}; "
                          "pass the utt2spk of the same data dir")
    return [keys[i] for i in keep], X[keep], np.array([utt2spk[keys[i]] for i in keep])


def _enrol_models(scp, spk2utt_path=None, allow_commands=False):
    """Enrolment vectors and their grouping: ``(model_ids, vectors, groups or None)``.

    Without ``spk2utt`` every key of ``scp`` is a model (e.g. ``spk_ivector.scp``, one vector per speaker);
    with it, ``scp`` holds utterance vectors and each speaker's utterances form one model.
    """
    from spkrec.io.datadir import read_spk2utt
    from spkrec.io.kaldi_io import read_vectors
    keys, X = read_vectors(scp, allow_commands)
    if spk2utt_path is None:
        return keys, X, None
    lines = {}
    spk2utt = {s: " ".join(u) for s, u in read_spk2utt(spk2utt_path, lines, strict=False).items()}
    row = {k: i for i, k in enumerate(keys)}
    models, rows, groups = [], [], []
    for spk, utts in spk2utt.items():
        for utt in utts.split():
            if utt not in row:
                raise SpkrecError(f"{spk2utt_path}:{lines[spk]}: utterance {utt!r} of {spk!r} "
                                  "has no vector in "
                                  f"{scp}; extract it or drop it from the enrolment list")
            rows.append(row[utt])
            groups.append(len(models))
        models.append(spk)
    return models, X[rows], np.array(groups, dtype=np.int64)


def _num_utts(path, models):
    """Counts ``<model-id> <num-utts>`` (Kaldi's num_utts.ark) for every model, as a float array."""
    from spkrec.io.datadir import read_table
    lines = {}
    table = read_table(path, min_fields=2, max_fields=2, what="num_utts", line_numbers=lines)
    counts = []
    for m in models:
        if m not in table:
            raise SpkrecError(f"{path}: no count for model {m!r}; "
                              "list every enrolment id with its utterance count")
        try:
            counts.append(int(table[m]))
        except ValueError:
            counts.append(0)
        if counts[-1] < 1:
            raise SpkrecError(f"{path}:{lines[m]}: count {table[m]!r} is not a positive integer; "
                              "fix this line")
    return np.array(counts, dtype=np.float64)


def _score_trials(pipe, args):
    from spkrec.io.kaldi_io import read_vectors
    from spkrec.io.scores import write_scores
    models, E, groups = _enrol_models(args.enroll_scp, args.enroll_spk2utt, args.allow_commands)
    test_ids, T = read_vectors(args.test_scp, args.allow_commands)
    rows, mi, ti = trial_indices(args.trials, models, test_ids, args.enroll_spk2utt or args.enroll_scp,
                                 args.test_scp)
    counts = _num_utts(args.enroll_num_utts, models) if args.enroll_num_utts and groups is None else 1
    scores = pipe.score_pairs(E, T, enroll_groups=groups, n_enroll=counts, pairs=(mi, ti))
    write_scores(args.out, [(e, t, s) for (e, t, _), s in zip(rows, scores)])
    log.info("scored %d trials (%d models, %d test vectors) -> %s", len(rows), len(models), len(test_ids),
             args.out)


def _add_scoring_io(p):
    p.add_argument("enroll_scp", metavar="ENROLL_SCP",
                   help="enrolment vectors: one per model (spk_ivector.scp) or per utterance with "
                        "--enroll-spk2utt")
    p.add_argument("test_scp", metavar="TEST_SCP", help="test vectors (e.g. ivector.scp)")
    p.add_argument("trials", metavar="TRIALS", help="trials: <enroll-id> <test-id> [target|nontarget]")
    p.add_argument("out", metavar="OUT", help="output score file: <enroll-id> <test-id> <score>")
    p.add_argument("--enroll-spk2utt", default=None, metavar="SPK2UTT",
                   help="multi-enrolment: ENROLL_SCP holds utterance vectors and each speaker's model uses "
                        "all "
                        "of them (PLDA: exact LLR with the speaker posterior given all of them)")
    p.add_argument("--enroll-num-utts", default=None, metavar="NUM_UTTS",
                   help="without --enroll-spk2utt: '<model-id> <count>' lines giving how many utterance "
                        "vectors "
                        "each (averaged) model vector of ENROLL_SCP stands for (PLDA; default 1)")
    add_command_args(p, "vector table (scp)")


# ------------------------------------------------------------------------------------ train-backend
def _add_train_backend(p):
    p.add_argument("--steps", default="center,lda:150,wccn,lnorm,plda",
                   help="comma-separated steps in order: center, whiten[:zca|pca], lda:DIM, wccn, "
                        "lnorm[:sqrt_dim|unit], then optionally plda[:ARG] or cosine (default %(default)s)")
    p.add_argument("--plda", choices=["two-cov", "simplified"], default="two-cov",
                   help="PLDA variant for the plda step: two-covariance (Kaldi; plda:ARG = EM iterations) or "
                        "simplified (Prince & Elder; plda:ARG = speaker factors) (default %(default)s)")
    p.add_argument("vectors_scp", metavar="VECTORS_SCP", help="training vectors, one per utterance")
    p.add_argument("utt2spk", metavar="UTT2SPK", help="speaker of each training utterance")
    p.add_argument("out", metavar="OUT.npz", help="back-end model file")
    add_command_args(p, "vector table (scp)")


def _run_train_backend(args):
    from spkrec.backend.pipeline import make_pipeline
    pipe = make_pipeline(args.steps, plda=args.plda)
    keys, X, y = _labelled_vectors(args.vectors_scp, args.utt2spk, args.allow_commands)
    log.info("training back end %s on %d vectors of dim %d from %d speakers",
             args.steps, len(keys), X.shape[1], len(np.unique(y)))
    pipe.fit(X, y)
    ll = getattr(pipe.scorer, "log_likelihoods_", None)
    if ll:
        log.info("PLDA log-likelihood per vector: %.4f -> %.4f", ll[0], ll[-1])
    pipe.save(args.out)
    log.info("wrote %s", args.out)


# ------------------------------------------------------------------------------- score-plda / cosine
def _add_score_plda(p):
    p.add_argument("backend", metavar="BACKEND", help="back-end model from train-backend (ending in plda)")
    _add_scoring_io(p)


def _run_score_plda(args):
    from spkrec.backend.pipeline import BackendPipeline
    pipe = BackendPipeline.load(args.backend)
    if not pipe.is_plda:
        raise SpkrecError(f"{args.backend}: this back end has no PLDA step; train it with --steps ...,plda "
                          "or score with score-cosine")
    _score_trials(pipe, args)


def _add_score_cosine(p):
    p.add_argument("--backend", default=None, metavar="BACKEND",
                   help="apply this back end's transforms (its PLDA, if any, is not used) before cosine "
                        "scoring")
    _add_scoring_io(p)


def _run_score_cosine(args):
    from spkrec.backend.cosine import CosineScorer
    from spkrec.backend.pipeline import BackendPipeline
    steps = BackendPipeline.load(args.backend).steps if args.backend else []
    _score_trials(BackendPipeline(steps, CosineScorer()), args)


# --------------------------------------------------------------------------------------- score-norm
def _add_score_norm(p):
    p.add_argument("--method", choices=list(METHODS), default="s",
                   help="z: Z-norm (enrolment side), t: T-norm (test side), s: symmetric S-norm, "
                        "as: adaptive S-norm with the --top-n best cohort scores of each side "
                        "(default %(default)s)")
    p.add_argument("--top-n", type=positive_int, default=200,
                   help="cohort size kept by adaptive S-norm (default %(default)s)")
    p.add_argument("scores", metavar="SCORES", help="raw score file <enroll-id> <test-id> <score>")
    p.add_argument("enroll_cohort", metavar="ENROLL_COHORT_SCORES",
                   help="every model against the cohort: <enroll-id> <cohort-id> <score> "
                        "(unused by --method t)")
    p.add_argument("test_cohort", metavar="TEST_COHORT_SCORES",
                   help="the cohort against every test vector: <cohort-id> <test-id> <score> "
                        "(unused by --method z)")
    p.add_argument("out", metavar="OUT", help="normalised score file")
    p.epilog = ("Cohort score files are made with the scoring verbs and 2-column trials: score-plda BACKEND "
                "ENROLL_SCP COHORT_SCP <enroll-id cohort-id list> ENROLL_COHORT_SCORES, and score-plda BACKEND "
                "COHORT_SCP TEST_SCP <cohort-id test-id list> TEST_COHORT_SCORES.")


def _run_score_norm(args):
    from spkrec.backend import score_norm
    from spkrec.io.scores import cohort_matrix, read_scores, score_indices, write_scores
    rows = read_scores(args.scores)
    if not rows:
        raise SpkrecError(f"{args.scores}: empty score file; run the scoring stage first")
    models, tests, ei, ti = score_indices(rows)
    sides = score_norm.COHORT_SIDES[args.method]
    ecoh = cohort_matrix(args.enroll_cohort, 0, models)[1] if "enroll" in sides else None
    tcoh = cohort_matrix(args.test_cohort, 1, tests)[1] if "test" in sides else None
    out = score_norm.normalise(args.method, np.array([s for _, _, s in rows]), ecoh, tcoh, ei, ti, top_n=args.top_n)
    write_scores(args.out, [(e, t, s) for (e, t, _), s in zip(rows, out)])
    log.info("%s-norm of %d scores -> %s", args.method, len(rows), args.out)


# ------------------------------------------------------------------------------- make-cohort-trials
_SIDES = ("speakers", "utterances")


def _add_make_cohort_trials(p):
    p.add_argument("--left", choices=_SIDES, default="speakers",
                   help="ids of LEFT_DATA to list: its speakers (spk2utt) or utterances (default %(default)s)")
    p.add_argument("--right", choices=_SIDES, default="utterances",
                   help="ids of RIGHT_DATA to list (default %(default)s)")
    p.add_argument("left_data", metavar="LEFT_DATA", help="data dir of the first column (e.g. enroll, or the cohort)")
    p.add_argument("right_data", metavar="RIGHT_DATA", help="data dir of the second column (the cohort, or test)")
    p.add_argument("out", metavar="OUT", help="2-column key: every left id against every right id")
    p.epilog = ("For S-norm: make-cohort-trials ENROLL COHORT enroll_cohort.trials (models x cohort utterances) "
                "and make-cohort-trials COHORT TEST cohort_test.trials (cohort models x test utterances); "
                "score both with the system's scoring verb, then score-norm.")


def _run_make_cohort_trials(args):
    from spkrec.io.datadir import DataDir
    from spkrec.io.trials import cohort_trials, write_trials

    def ids(path, side):
        data = DataDir(path)
        return list(data.spk2utt) if side == "speakers" else list(data.utts)
    rows = cohort_trials(ids(args.left_data, args.left), ids(args.right_data, args.right))
    write_trials(args.out, rows)
    log.info("wrote %d cohort trials -> %s", len(rows), args.out)


# ---------------------------------------------------------------------------------------------- SVM
def _add_train_svm(p):
    p.add_argument("--C", type=positive_float, default=1.0, help="SVM soft-margin cost (default %(default)s)")
    p.add_argument("--class-weight", choices=["balanced", "none"], default="balanced",
                   help="balanced: targets and background weigh the same in total (default); "
                        "none: 1 per vector")
    p.add_argument("supervectors_scp", metavar="SUPERVECTORS_SCP",
                   help="supervectors of the enrolment utterances")
    p.add_argument("enroll_utt2spk", metavar="ENROLL_UTT2SPK", help="speaker of each enrolment utterance")
    p.add_argument("background_scp", metavar="BACKGROUND_SCP", help="background (impostor) supervectors")
    p.add_argument("out", metavar="OUT.npz", help="SVM model file")
    add_command_args(p, "vector table (scp)")


def _run_train_svm(args):
    from spkrec.backend.svm import GSVSVM
    from spkrec.io.kaldi_io import read_vectors
    keys, X, y = _labelled_vectors(args.supervectors_scp, args.enroll_utt2spk, args.allow_commands)
    _, bg = read_vectors(args.background_scp, args.allow_commands)
    if bg.shape[1] != X.shape[1]:
        raise SpkrecError(f"{args.background_scp}: supervectors of dimension {bg.shape[1]}, "
                          "enrolment ones have "
                          f"{X.shape[1]}; extract both with the same UBM")
    log.info("training %d SVMs on %d enrolment and %d background supervectors (dim %d)",
             len(np.unique(y)), len(keys), len(bg), X.shape[1])
    cw = None if args.class_weight == "none" else "balanced"
    GSVSVM(C=args.C, class_weight=cw).fit(X, y, bg).save(args.out)
    log.info("wrote %s", args.out)


def _add_score_svm(p):
    p.add_argument("svm", metavar="SVM", help="model file from train-svm")
    p.add_argument("test_scp", metavar="TEST_SCP", help="test supervectors")
    p.add_argument("trials", metavar="TRIALS", help="trials: <enroll-id> <test-id> [target|nontarget]")
    p.add_argument("out", metavar="OUT", help="output score file")
    add_command_args(p, "vector table (scp)")


def _run_score_svm(args):
    from spkrec.backend.svm import GSVSVM
    from spkrec.io.kaldi_io import read_vectors
    from spkrec.io.scores import write_scores
    svm = GSVSVM.load(args.svm)
    test_ids, T = read_vectors(args.test_scp, args.allow_commands)
    rows, mi, ti = trial_indices(args.trials, list(svm.speakers_), test_ids, os.fspath(args.svm),
                                 args.test_scp)
    scores = svm.score_pairs(T, pairs=(mi, ti))
    write_scores(args.out, [(e, t, s) for (e, t, _), s in zip(rows, scores)])
    log.info("scored %d trials -> %s", len(rows), args.out)


COMMANDS = {
    "train-backend": (_add_train_backend, _run_train_backend),
    "score-plda": (_add_score_plda, _run_score_plda),
    "score-cosine": (_add_score_cosine, _run_score_cosine),
    "make-cohort-trials": (_add_make_cohort_trials, _run_make_cohort_trials),
    "score-norm": (_add_score_norm, _run_score_norm),
    "train-svm": (_add_train_svm, _run_train_svm),
    "score-svm": (_add_score_svm, _run_score_svm),
}
