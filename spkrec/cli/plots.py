"""``plot-hist``, ``plot-confusion``, ``plot-em``, ``plot-ape``, ``plot-map``: the results figures
(``plot-det`` is in :mod:`spkrec.cli.eval`). Each writes one image (.png, .pdf or .svg) atomically."""
import argparse
import logging
import math
import os

import numpy as np

from spkrec.cli.common import positive_int, probability
from spkrec.errors import SpkrecError

log = logging.getLogger("spkrec")


def _split_label(arg):
    from spkrec.cli.eval import _split_label as split
    return split(arg)


def det_limits(text):
    """argparse type of ``--det-limits LOW,HIGH`` in percent (``0.1,40``) -> probabilities."""
    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LOW,HIGH in percent (e.g. 0.1,40)") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo < hi < 100.0):
        raise argparse.ArgumentTypeError(f"{text!r}: need 0 < LOW < HIGH < 100 (percent)")
    return lo / 100.0, hi / 100.0


def _common(p, what):
    p.add_argument("--out", required=True, help="output image (.png, .pdf or .svg)")
    p.add_argument("--title", default=None, help=f"figure title (default: {what})")


def _wrote(path):
    log.info("wrote %s", path)
    return 0


# ---------------------------------------------------------------- plot-hist
def _pairs(specs, trials):
    """``RAW[,CALIBRATED][:LABEL]`` arguments -> ``[(label, raw, calibrated or None, labels)]`` aligned on trials."""
    from spkrec.io.scores import scores_for_trials
    out = []
    for arg in specs:
        path, label = _split_label(arg)
        raw_path, _, cal_path = path.partition(",")
        if label == os.path.splitext(os.path.basename(path))[0]:
            label = os.path.splitext(os.path.basename(raw_path))[0]
        raw, labels = scores_for_trials(raw_path, trials)
        cal = scores_for_trials(cal_path, trials)[0] if cal_path else None
        out.append((label, raw, cal, labels))
    return out


def _systems_and_trials(args, verb):
    if len(args.inputs) < 2:
        raise SpkrecError(f"{verb}: give at least one score file and then the trials file")
    *specs, trials = args.inputs
    return _pairs(specs, trials)


_PAIR_HELP = ("score files, each optionally with the same trials' calibrated scores after a comma and a label "
              "after a colon (RAW,CALIBRATED:LABEL; RAW and CALIBRATED may be the same file for LLR scores), "
              "then the trials file")


def add_hist(p):
    _common(p, "none")
    p.add_argument("inputs", nargs="+", metavar="SCORES[,CALIBRATED][:LABEL] ... TRIALS", help=_PAIR_HELP +
                   "; one panel per system. With CALIBRATED, the Bayes threshold -logit(p_target) of the calibrated "
                   "scores is mapped back onto SCORES' scale and drawn")
    p.add_argument("--target-prior", type=probability, default=0.01,
                   help="prior of a target trial of the Bayes threshold (default 0.01)")
    p.add_argument("--bins", type=positive_int, default=50, help="histogram bins (default 50)")
    p.add_argument("--ncols", type=positive_int, default=3, help="panels per row (default 3)")


def run_hist(args):
    from spkrec.eval.metrics import bayes_threshold
    from spkrec.eval.plots import affine_inverse, plot_score_histogram_grid
    theta = bayes_threshold(args.target_prior)
    panels = []
    for label, raw, cal, labels in _systems_and_trials(args, "plot-hist"):
        thr, text = None, None
        if cal is not None:
            thr = affine_inverse(raw, cal, theta)
            if thr is None:
                log.warning("%s: the calibration is not increasing; no Bayes threshold drawn", label)
            else:
                text = f"calibrated Bayes threshold {thr:.3g} (p_target={args.target_prior:g})"
        panels.append((label, raw, labels, thr, text))
    plot_score_histogram_grid(panels, args.out, bins=args.bins, title=args.title, ncols=args.ncols)
    return _wrote(args.out)


# ---------------------------------------------------------------- plot-confusion
def add_confusion(p):
    _common(p, "the system and its top-1 accuracy; a %s in TITLE is replaced by that")
    p.add_argument("--utt2spk", required=True, help="utt2spk of the test data (model ids are speaker ids)")
    p.add_argument("systems", nargs="+", metavar="SCORES[:LABEL]",
                   help="score files with every test utterance scored against every model; the one with the "
                        "best top-1 accuracy is drawn")
    p.add_argument("--optional", action="store_true",
                   help="when no score file scores every test utterance against every model, warn and exit 0 "
                        "without writing (the recipes' results stage)")


def run_confusion(args):
    from spkrec.cli.eval import _read_utt2spk
    from spkrec.eval.identification import confusion_matrix, identification_scores, top_k_accuracy
    from spkrec.eval.plots import plot_confusion
    from spkrec.io.datadir import c_sorted
    from spkrec.io.scores import read_scores
    utt2spk = _read_utt2spk(args.utt2spk)
    best = None
    for arg in args.systems:
        path, label = _split_label(arg)
        rows = read_scores(path)
        models = c_sorted({r[0] for r in rows})
        try:
            matrix, true_idx = identification_scores(rows, utt2spk, models, what=path)
        except SpkrecError as err:
            log.warning("%s skipped: %s", label, err)
            continue
        top1 = top_k_accuracy(matrix, true_idx, 1)
        if best is None or top1 > best[0]:
            best = (top1, label, confusion_matrix(matrix, true_idx), models)
    if best is None and args.optional:
        log.warning("no confusion matrix: no score file scores every test utterance against every model")
        return 0
    if best is None:
        raise SpkrecError("no score file scores every test utterance against every model; nothing to plot")
    top1, label, conf, models = best
    what = f"{label}: confusion matrix (top-1 {100 * top1:.1f} %)"
    plot_confusion(conf, models, args.out, title=args.title.replace("%s", what) if args.title else what)
    print(f"best identifier: {label} (top-1 {100 * top1:.2f} %)")
    return _wrote(args.out)


# ---------------------------------------------------------------- plot-em
def add_em(p):
    _common(p, "none")
    p.add_argument("models", nargs="+", metavar="MODEL[:LABEL]",
                   help="objective files (*.objective.txt from train-ubm, train-full-ubm, train-ivector-extractor), "
                        "model files or model dirs; one panel each")


def run_em(args):
    from spkrec.eval.plots import plot_objectives, read_objective
    curves = []
    for arg in args.models:
        path, label = _split_label(arg)
        curves.append((label, read_objective(path)))
    plot_objectives(curves, args.out, title=args.title)
    return _wrote(args.out)


# ---------------------------------------------------------------- plot-ape
def add_ape(p):
    _common(p, "Bayes error rate (APE)")
    p.add_argument("inputs", nargs="+", metavar="SCORES[,CALIBRATED][:LABEL] ... TRIALS",
                   help=_PAIR_HELP + "; one panel per system (raw and calibrated curves)")
    p.add_argument("--target-prior", type=probability, default=0.01,
                   help="prior of a target trial marked as the operating point (default 0.01)")
    p.add_argument("--ncols", type=positive_int, default=3, help="panels per row (default 3)")


def run_ape(args):
    from spkrec.eval.plots import plot_bayes_error_grid
    groups = []
    for label, raw, cal, labels in _systems_and_trials(args, "plot-ape"):
        if cal is None:
            curves = [("scores", raw, labels)]
        elif np.array_equal(raw, cal):       # LLRs given twice (a fusion's output)
            curves = [("calibrated", cal, labels)]
        else:
            curves = [("raw", raw, labels), ("calibrated", cal, labels)]
        groups.append((label, curves))
    plot_bayes_error_grid(groups, args.out, p_target=args.target_prior, title=args.title, ncols=args.ncols)
    return _wrote(args.out)


# ---------------------------------------------------------------- plot-map
def add_map(p):
    _common(p, "the number of vectors and speakers")
    p.add_argument("--utt2spk", required=True, help="utt2spk of the vectors' utterances (colours)")
    p.add_argument("tables", nargs="+", metavar="VECTORS[:LABEL]",
                   help="vector tables (ivector.scp, embedding.scp), one row of panels each")
    p.add_argument("--method", choices=["pca", "tsne", "both"], default="both",
                   help="PCA, t-SNE or both side by side (default both; t-SNE only up to --tsne-max vectors)")
    p.add_argument("--tsne-max", type=positive_int, default=1000, help="most vectors for t-SNE (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="t-SNE random seed (default 0)")


def run_map(args):
    from spkrec.cli.eval import _read_utt2spk
    from spkrec.eval.plots import plot_vector_maps
    from spkrec.io.kaldi_io import read_vectors
    utt2spk = _read_utt2spk(args.utt2spk)
    tables = []
    for arg in args.tables:
        path, label = _split_label(arg)
        keys, vectors = read_vectors(path)
        missing = [k for k in keys if k not in utt2spk]
        if missing:
            raise SpkrecError(f"{args.utt2spk}: no speaker for {missing[0]!r} of {path} ({len(missing)} vectors); "
                              "pass the utt2spk of the same data dir")
        if len(keys) > args.tsne_max and args.method != "pca":
            log.info("%s: %d vectors > --tsne-max %d: PCA only", path, len(keys), args.tsne_max)
        tables.append((label, vectors, [utt2spk[k] for k in keys]))
    methods = ("pca", "tsne") if args.method == "both" else (args.method,)
    plot_vector_maps(tables, args.out, methods=methods, title=args.title, random_state=args.seed,
                     tsne_max=args.tsne_max)
    return _wrote(args.out)


COMMANDS = {
    "plot-hist": (add_hist, run_hist),
    "plot-confusion": (add_confusion, run_confusion),
    "plot-em": (add_em, run_em),
    "plot-ape": (add_ape, run_ape),
    "plot-map": (add_map, run_map),
}
