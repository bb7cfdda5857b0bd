"""``spkrec train-calibration | apply-calibration | fuse``: scores -> calibrated log-likelihood ratios.

Training trials must come from background speakers (never the evaluation trials), and every score file
used for training must score exactly the trials of the trials file.
"""
import logging
import os

import numpy as np

from spkrec.errors import SpkrecError

log = logging.getLogger("spkrec")


def _add_prior(parser):
    parser.add_argument("--target-prior", type=float, default=0.01,
                        help="prior whose cross-entropy the logistic regression minimises; also the p_target "
                             "of the logged DCFs (default 0.01, as minDCF)")


def labelled_scores(scores_path, trials_path):
    """Scores of exactly the trials of a labelled trials file: ``(scores (n,), labels (n,), keys)`` in
    trials order. A trial without a score, or a scored pair not in the trials, is a :class:`SpkrecError`."""
    from spkrec.io.scores import read_scores_with_lines
    from spkrec.io.trials import read_trials_with_lines
    trials, trial_lines = read_trials_with_lines(trials_path, require_labels=True)
    rows, score_lines = read_scores_with_lines(scores_path)
    lookup = {(e, t): s for e, t, s in rows}
    missing = [i for i, (e, t, _) in enumerate(trials) if (e, t) not in lookup]
    if missing:
        e, t, _ = trials[missing[0]]
        raise SpkrecError(f"{trials_path}:{trial_lines[missing[0]]}: trial {e} {t} has no score in "
                          f"{scores_path} ({len(missing)} trials lack one); score exactly the trials of "
                          "the trials file")
    if len(rows) != len(trials):
        keys = {(e, t) for e, t, _ in trials}
        extra = [i for i, (e, t, _) in enumerate(rows) if (e, t) not in keys]
        e, t, _ = rows[extra[0]]
        raise SpkrecError(f"{scores_path}:{score_lines[extra[0]]}: trial {e} {t} is not in {trials_path} "
                          f"({len(extra)} such lines); score exactly the trials of the trials file")
    keys = [(e, t) for e, t, _ in trials]
    labels = np.array([lab for _, _, lab in trials], dtype=bool)
    return np.array([lookup[k] for k in keys], dtype=np.float64), labels, keys


def _scores_on_keys(path, keys, reference):
    """Scores of ``path`` in the order of ``keys`` (the trials of ``reference``): the same trials, or an
    error naming ``path``."""
    from spkrec.io.scores import read_scores_with_lines
    rows, lines = read_scores_with_lines(path)
    lookup = {(e, t): s for e, t, s in rows}
    missing = [k for k in keys if k not in lookup]
    if missing:
        raise SpkrecError(f"{path}: trial {missing[0][0]} {missing[0][1]} of {reference} has no score here "
                          f"({len(missing)} such trials); all systems must score the same trials")
    if len(rows) != len(keys):
        have = set(keys)
        i = next(i for i, (e, t, _) in enumerate(rows) if (e, t) not in have)
        raise SpkrecError(f"{path}:{lines[i]}: trial {rows[i][0]} {rows[i][1]} is not in {reference} "
                          f"({len(rows) - len(keys)} extra lines); all systems must score the same trials")
    return np.array([lookup[k] for k in keys], dtype=np.float64)


def _log_quality(name, llr, labels, p):
    from spkrec.eval.metrics import act_dcf, cllr, min_cllr, min_dcf
    log.info("%s: Cllr %.4f, minCllr %.4f, actDCF %.4f, minDCF %.4f (p_target %g)", name, cllr(llr, labels),
             min_cllr(llr, labels), act_dcf(llr, labels, p_target=p), min_dcf(llr, labels, p)[0], p)


def _signed(x):
    return f"{'-' if x < 0 else '+'} {abs(x):.6g}"


def _write(path, keys, llr):
    from spkrec.io.scores import write_scores
    write_scores(path, [(e, t, s) for (e, t), s in zip(keys, llr)])


# ---------------------------------------------------------------- train-calibration
def add_train_args(parser):
    parser.add_argument("scores", help="score file of background trials: <enroll-id> <test-id> <score>")
    parser.add_argument("trials", help="the same trials with labels: <enroll-id> <test-id> target|nontarget "
                                       "(background speakers only, never the evaluation trials)")
    parser.add_argument("out", help="calibration model to write (.npz)")
    _add_prior(parser)


def run_train(args):
    from spkrec.backend.calibration import LinearCalibration, check_training_trials
    scores, labels, _ = labelled_scores(args.scores, args.trials)
    check_training_trials(scores, labels, what=f"{args.scores} on {args.trials}")
    model = LinearCalibration(target_prior=args.target_prior).fit(scores, labels)
    log.info("llr = %.6g * score %s (target prior %g, %d targets, %d non-targets, %d Newton iterations)",
             model.scale_, _signed(model.offset_), args.target_prior, labels.sum(), (~labels).sum(),
             model.n_iter_)
    if model.scale_ <= 0:
        log.warning("%s: the scale is not positive, higher scores mean *less* likely the same speaker; "
                    "check the scoring step", args.scores)
    _log_quality("training trials, raw", scores, labels, args.target_prior)
    _log_quality("training trials, calibrated", model.transform(scores), labels, args.target_prior)
    model.save(args.out)
    return 0


# ---------------------------------------------------------------- apply-calibration
def add_apply_args(parser):
    parser.add_argument("model", help="calibration model from train-calibration (.npz)")
    parser.add_argument("scores", help="score file to calibrate")
    parser.add_argument("out", help="calibrated score file (natural-log LLRs; same trials, same order)")


def run_apply(args):
    from spkrec.backend.calibration import LinearCalibration, check_scores
    from spkrec.io.scores import read_scores
    model = LinearCalibration.load(args.model)
    rows = read_scores(args.scores)
    scores = check_scores(np.array([s for _, _, s in rows]).reshape(-1, 1), what=args.scores)[:, 0]
    _write(args.out, [(e, t) for e, t, _ in rows], model.transform(scores))
    return 0


# ---------------------------------------------------------------- fuse
def add_fuse_args(parser):
    parser.add_argument("systems", nargs="+", metavar="TRAIN_SCORES[,EVAL_SCORES]",
                        help="one entry per system: its score file on the training trials, then (after a "
                             "comma) on the evaluation trials; with --model, only the evaluation files")
    parser.add_argument("--trials", help="labelled background trials that every TRAIN_SCORES file scores")
    parser.add_argument("--model-out", help="write the trained fusion here (.npz)")
    parser.add_argument("--model", help="apply this fusion (.npz) instead of training one")
    parser.add_argument("--out", help="fused evaluation score file (natural-log LLRs, in the order of the "
                                      "first system's file)")
    parser.add_argument("--names", help="comma-separated system names stored in the model (default: the "
                                        "training files' names without extension)")
    _add_prior(parser)


def _fuse_inputs(args):
    """``(train_paths or None, eval_paths or None)`` from the positional arguments, checked."""
    if (args.model is None) == (args.trials is None):
        raise SpkrecError("fuse: give --trials (train a fusion) or --model (apply one), not both or neither")
    parts = [s.split(",") for s in args.systems]
    if args.model:
        if any(len(p) != 1 for p in parts) or args.out is None:
            raise SpkrecError("fuse --model: give the evaluation score files only (no TRAIN,EVAL pairs) "
                              "and --out")
        return None, args.systems
    if any(len(p) > 2 or not all(p) for p in parts) or len({len(p) for p in parts}) != 1:
        raise SpkrecError("fuse: give every system as TRAIN_SCORES,EVAL_SCORES (or every one as TRAIN_SCORES "
                          f"alone with --model-out); got {' '.join(args.systems)}")
    evals = [p[1] for p in parts] if len(parts[0]) == 2 else None
    if evals is not None and args.out is None:
        raise SpkrecError("fuse: TRAIN,EVAL pairs need --out for the fused evaluation scores")
    if evals is None and (args.model_out is None or args.out is not None):
        raise SpkrecError("fuse: without evaluation files there is nothing to --out; give TRAIN,EVAL pairs "
                          "or only --model-out")
    return [p[0] for p in parts], evals


def run_fuse(args):
    from spkrec.backend.calibration import LinearFusion, check_scores, check_training_trials
    train, evals = _fuse_inputs(args)
    if train is not None:
        first, labels, keys = labelled_scores(train[0], args.trials)
        S = np.column_stack([first] + [_scores_on_keys(p, keys, args.trials) for p in train[1:]])
        for j, path in enumerate(train):
            check_training_trials(S[:, j], labels, what=f"{path} on {args.trials}")
        names = (args.names.split(",") if args.names
                 else [os.path.splitext(os.path.basename(p))[0] for p in train])
        if len(names) != len(train):
            raise SpkrecError(f"fuse: --names gives {len(names)} names for {len(train)} systems")
        model = LinearFusion(target_prior=args.target_prior).fit(S, labels, systems=names)
        log.info("llr = %s %s (target prior %g, %d targets, %d non-targets)",
                 " + ".join(f"{w:.6g} * {n}" for w, n in zip(model.weights_, names)), _signed(model.offset_),
                 args.target_prior, labels.sum(), (~labels).sum())
        for j, name in enumerate(names):
            _log_quality(f"training trials, {name}", S[:, j], labels, args.target_prior)
        _log_quality("training trials, fused", model.transform(S), labels, args.target_prior)
        if args.model_out:
            model.save(args.model_out)
    else:
        model = LinearFusion.load(args.model)
        if len(evals) != model.weights_.size:
            raise SpkrecError(f"{args.model}: fuses {model.weights_.size} systems "
                              f"({', '.join(model.systems_) or 'unnamed'}), got {len(evals)} score files; "
                              "give them in the training order")
    if evals is not None:
        from spkrec.io.scores import read_scores
        keys = [(e, t) for e, t, _ in read_scores(evals[0])]
        columns = [_scores_on_keys(p, keys, evals[0]) for p in evals]
        for path, col in zip(evals, columns):
            check_scores(col, what=path)
        _write(args.out, keys, model.transform(np.column_stack(columns)))
    return 0


COMMANDS = {
    "train-calibration": (add_train_args, run_train),
    "apply-calibration": (add_apply_args, run_apply),
    "fuse": (add_fuse_args, run_fuse),
}
