"""``spkrec evaluate | identify | plot-det | results-table``: metrics and DET plots of score files
(the other figures: :mod:`spkrec.cli.plots`)."""
import json
import logging
import os

from spkrec.cli.common import positive_float, positive_int, probability
from spkrec.errors import SpkrecError


def _add_costs(parser):
    g = parser.add_argument_group("detection cost")
    g.add_argument("--p-target", type=probability, default=0.01, help="prior of a target trial (default 0.01)")
    g.add_argument("--c-miss", type=positive_float, default=1.0, help="cost of a miss (default 1)")
    g.add_argument("--c-fa", type=positive_float, default=1.0, help="cost of a false alarm (default 1)")


def _read_utt2spk(path):
    from spkrec.io.datadir import read_table
    return read_table(path, min_fields=2, max_fields=2, what="utt2spk")


def _split_label(arg):
    """``SCORES[:LABEL]`` -> ``(path, label)``; the label defaults to the file name without extension."""
    path, sep, label = arg.rpartition(":")
    if not sep or not path or "/" in label or (os.path.exists(arg) and not os.path.exists(path)):
        path, label = arg, ""
    return path, label or os.path.splitext(os.path.basename(path))[0]


# ---------------------------------------------------------------- evaluate
def add_evaluate_args(parser):
    parser.add_argument("scores", help="score file: <enroll-id> <test-id> <score> lines")
    parser.add_argument("trials", help="trials file: <enroll-id> <test-id> target|nontarget lines")
    _add_costs(parser)
    parser.add_argument("--eer-method", choices=["exact", "rocch"], default="exact",
                        help="EER on the interpolated DET curve (exact, default) or on its convex hull "
                             "(rocch)")
    parser.add_argument("--hist", metavar="PNG", help="also write target/non-target score histograms here")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")


def run_evaluate(args):
    from spkrec.eval.metrics import verification_metrics
    from spkrec.io.scores import scores_for_trials
    scores, labels = scores_for_trials(args.scores, args.trials)
    m = verification_metrics(scores, labels, args.p_target, args.c_miss, args.c_fa,
                             eer_method=args.eer_method)
    if args.hist:
        from spkrec.eval.plots import plot_score_histograms
        plot_score_histograms(scores, labels, args.hist, title=os.path.basename(args.scores))
    if args.json:
        print(json.dumps(m, sort_keys=True))
        return 0
    print(f"EER:     {100 * m['eer']:.2f} %  (threshold {m['eer_threshold']:.4f}, {m['eer_method']})")
    print(f"minDCF:  {m['min_dcf']:.4f}  (p_target={args.p_target:g}, c_miss={args.c_miss:g}, "
          f"c_fa={args.c_fa:g}; threshold {m['min_dcf_threshold']:.4f})")
    print(f"actDCF:  {m['act_dcf']:.4f}  (Bayes threshold {m['act_dcf_threshold']:.4f})")
    print(f"Cllr:    {m['cllr']:.4f} bits")
    print(f"minCllr: {m['min_cllr']:.4f} bits")
    print(f"AUC:     {m['auc']:.4f}")
    print(f"trials:  {m['num_targets']} targets, {m['num_nontargets']} non-targets")
    return 0


# ---------------------------------------------------------------- identify
def add_identify_args(parser):
    parser.add_argument("scores", help="score file with every test utterance scored against every model")
    parser.add_argument("utt2spk", help="utt2spk of the test data (model ids are speaker ids)")
    parser.add_argument("--top-k", type=positive_int, default=5, help="also report top-k accuracy (default 5)")
    parser.add_argument("--confusion", metavar="PNG", help="write the confusion-matrix image here")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")


def run_identify(args):
    from spkrec.eval.identification import confusion_matrix, identification_scores, top_k_accuracy
    from spkrec.io.datadir import c_sorted
    from spkrec.io.scores import read_scores
    utt2spk = _read_utt2spk(args.utt2spk)
    rows = read_scores(args.scores)
    models = c_sorted({r[0] for r in rows})
    matrix, true_idx = identification_scores(rows, utt2spk, models, what=args.scores)
    result = {"top1": top_k_accuracy(matrix, true_idx, 1), "top_k": args.top_k,
              "topk": top_k_accuracy(matrix, true_idx, args.top_k),
              "num_test": int(matrix.shape[0]), "num_models": int(matrix.shape[1])}
    if args.confusion:
        from spkrec.eval.plots import plot_confusion
        plot_confusion(confusion_matrix(matrix, true_idx), models, args.confusion)
        result["confusion"] = args.confusion
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        print(f"top-1:  {100 * result['top1']:.2f} %")
        print(f"top-{args.top_k}:  {100 * result['topk']:.2f} %")
        print(f"test utterances: {result['num_test']}, models: {result['num_models']}")
    return 0


# ---------------------------------------------------------------- plot-det
def add_plot_det_args(parser):
    parser.add_argument("--out", required=True, help="output image (.png, .pdf or .svg)")
    parser.add_argument("inputs", nargs="+", metavar="SCORES[:LABEL] ... TRIALS",
                        help="one or more score files (each optionally :LABEL), then the trials file")
    _add_costs(parser)
    parser.add_argument("--title", default=None, help="figure title, e.g. the recipe and evaluation set "
                                                         "(default 'DET curve')")
    from spkrec.cli.plots import det_limits
    parser.add_argument("--det-limits", type=det_limits, default=(0.001, 0.4), metavar="LOW,HIGH",
                        help="the view on both axes in percent (default 0.1,40); markers outside it sit hollow "
                             "on the edge")
    parser.add_argument("--no-curve-markers", action="store_true",
                        help="no markers at intervals along the curves (they tell coinciding curves apart)")


def run_plot_det(args):
    from spkrec.eval.metrics import eer
    from spkrec.eval.plots import plot_det
    from spkrec.io.scores import scores_for_trials
    if len(args.inputs) < 2:
        raise SpkrecError("plot-det: give at least one score file and then the trials file")
    *systems_args, trials = args.inputs
    systems = []
    for arg in systems_args:
        path, label = _split_label(arg)
        scores, labels = scores_for_trials(path, trials)
        systems.append((label, scores, labels))
    plot_det(systems, args.out, p_target=args.p_target, c_miss=args.c_miss, c_fa=args.c_fa, title=args.title,
             limits=args.det_limits, curve_markers=not args.no_curve_markers)
    for label, scores, labels in systems:
        print(f"{label}: EER {100 * eer(scores, labels)[0]:.2f} %")
    print(f"wrote {args.out}")
    return 0


# ---------------------------------------------------------------- results-table
def add_results_table_args(parser):
    parser.add_argument("--trials", required=True, help="trials file the systems were scored on")
    parser.add_argument("--utt2spk", default=None,
                        help="utt2spk of the test data: adds top-1/top-k identification columns ('–', with a "
                             "warning, for a score file without every test utterance against every model)")
    parser.add_argument("--top-k", type=positive_int, default=5, help="k of the top-k column (default 5)")
    parser.add_argument("--out", default=None, help="also write the Markdown table here (atomically)")
    parser.add_argument("systems", nargs="+", metavar="SCORES:LABEL", help="score files, one row each")
    _add_costs(parser)


def run_results_table(args):
    from spkrec.eval.metrics import act_dcf, cllr, eer, min_cllr, min_dcf, roc_auc
    from spkrec.eval.report import results_table
    from spkrec.io.scores import read_scores, scores_for_trials
    utt2spk = _read_utt2spk(args.utt2spk) if args.utt2spk else None
    rows = []
    for arg in args.systems:
        path, label = _split_label(arg)
        scores, labels = scores_for_trials(path, args.trials)
        row = {"system": label, "eer": eer(scores, labels)[0],
               "min_dcf": min_dcf(scores, labels, args.p_target, args.c_miss, args.c_fa)[0],
               "act_dcf": act_dcf(scores, labels, None, args.p_target, args.c_miss, args.c_fa),
               "cllr": cllr(scores, labels), "min_cllr": min_cllr(scores, labels), "auc": roc_auc(scores, labels)}
        if utt2spk is not None:
            from spkrec.eval.identification import identification_scores, top_k_accuracy
            try:
                matrix, true_idx = identification_scores(read_scores(path), utt2spk, what=path)
            except SpkrecError as err:       # e.g. trials that do not cover every (model, test) pair
                logging.getLogger("spkrec").warning("no identification columns for %s: %s", label, err)
            else:
                row["top1"] = top_k_accuracy(matrix, true_idx, 1)
                row["topk"] = top_k_accuracy(matrix, true_idx, args.top_k)
        rows.append(row)
    table = results_table(rows, k=args.top_k, identification=utt2spk is not None)
    print(table, end="")
    if args.out:
        from spkrec.io.atomic import write_text_atomic
        write_text_atomic(args.out, table)
    return 0


COMMANDS = {
    "evaluate": (add_evaluate_args, run_evaluate),
    "identify": (add_identify_args, run_identify),
    "plot-det": (add_plot_det_args, run_plot_det),
    "results-table": (add_results_table_args, run_results_table),
}
