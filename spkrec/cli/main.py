"""``spkrec`` entry point: dispatches ``spkrec <verb>`` to the module that implements the verb.

Each verb module defines ``COMMANDS = {verb: (add_arguments, run)}`` where ``add_arguments(parser)``
declares options and ``run(args)`` does the work. Only the chosen verb's module is imported, so
``spkrec --help`` is instant and an optional extra (torch, dask) is needed only by its own verbs.
"""
import argparse
import copy
import errno
import importlib
import os
import re
import sys
import traceback

from spkrec.errors import OptionRangeError, SpkrecError

# verb -> (module, one-line help), in pipeline order
VERBS = {
    "prepare-data": ("spkrec.cli.data", "write a Kaldi-style data dir for a corpus (timit, so762, librispeech, voxceleb1, fsdd)"),
    "make-data-dir": ("spkrec.cli.system", "a Kaldi data dir from one folder per speaker or a speaker,path list"),
    "validate-data-dir": ("spkrec.cli.data", "check a data dir: sorting, consistency, audio files open"),
    "subset-data-dir": ("spkrec.cli.data", "copy a data dir restricted to a list of speakers or utterances"),
    "combine-data-dirs": ("spkrec.cli.data", "combine data dirs into one (Kaldi's utils/combine_data.sh)"),
    "make-trials": ("spkrec.cli.data", "split speakers' utterances into enrolment/test and write trials"),
    "make-folds": ("spkrec.cli.data", "cross-fitting folds of background speakers with trials (calibration, fusion)"),
    "compute-feats": ("spkrec.cli.features", "compute MFCC/fbank/PLP/RASTA-PLP/LPC/LPCC features to ark/scp"),
    "compute-vad": ("spkrec.cli.features", "energy voice-activity detection (Kaldi compute-vad-energy) to vad.scp"),
    "train-ubm": ("spkrec.cli.gmm", "train a diagonal-covariance UBM by EM"),
    "enroll-gmm": ("spkrec.cli.gmm", "MAP-adapt one GMM per enrolled speaker from the UBM"),
    "score-gmm": ("spkrec.cli.gmm", "score trials with the GMM-UBM log-likelihood ratio"),
    "extract-supervectors": ("spkrec.cli.gmm", "MAP mean supervectors scaled by sqrt(weight)/sigma (for GSV-SVM)"),
    "make-td-trials": ("spkrec.cli.hmm", "text-dependent folds and trials of four kinds (speaker x phrase models)"),
    "train-hmm": ("spkrec.cli.hmm", "train a speaker-independent left-to-right HMM per phrase (Baum-Welch)"),
    "enroll-hmm": ("spkrec.cli.hmm", "MAP-adapt the phrase HMMs' state means per enrolled speaker and phrase"),
    "score-hmm": ("spkrec.cli.hmm", "score text-dependent trials: speaker HMM vs SI HMM log-likelihood ratio"),
    "train-full-ubm": ("spkrec.cli.ivector", "train a full-covariance UBM from a diagonal one"),
    "train-ivector-extractor": ("spkrec.cli.ivector", "train the total-variability matrix T by EM"),
    "extract-ivectors": ("spkrec.cli.ivector", "extract i-vectors (ivector.scp, spk_ivector.scp)"),
    "choose-ivector-size": ("spkrec.cli.ivector", "pick the i-vector UBM size and T dimension on held-out background speakers"),
    "train-backend": ("spkrec.cli.backend", "train a back-end pipeline (center, LDA, WCCN, length norm, PLDA)"),
    "score-plda": ("spkrec.cli.backend", "score trials with a PLDA log-likelihood ratio"),
    "score-cosine": ("spkrec.cli.backend", "score trials by cosine similarity (after an optional back end)"),
    "make-cohort-trials": ("spkrec.cli.backend", "every model/cohort id against every cohort/test id (S-norm cohort keys)"),
    "score-norm": ("spkrec.cli.backend", "Z-, T-, S- or adaptive S-norm of a score file"),
    "train-svm": ("spkrec.cli.backend", "train GMM-supervector SVMs, one per enrolled speaker"),
    "score-svm": ("spkrec.cli.backend", "score trials with GMM-supervector SVMs"),
    "train-rnn": ("spkrec.cli.rnn", "train an LSTM/GRU speaker encoder (needs the [rnn] extra)"),
    "extract-embeddings": ("spkrec.cli.rnn", "extract RNN or CNN speaker embeddings (needs the [rnn] extra)"),
    "classify-rnn": ("spkrec.cli.rnn", "closed-set identification with an RNN softmax classifier"),
    "train-cnn": ("spkrec.cli.cnn", "train a CNN speaker encoder (VGG / thin ResNet, needs the [rnn] extra)"),
    "classify-cnn": ("spkrec.cli.cnn", "closed-set identification with a CNN classifier (warm start from train-cnn)"),
    "identify-knn": ("spkrec.cli.cnn", "k-nearest-neighbour identification over embeddings (cosine vote)"),
    "train-calibration": ("spkrec.cli.calibration", "train a linear score calibration (prior-weighted logistic regression)"),
    "apply-calibration": ("spkrec.cli.calibration", "calibrate a score file to log-likelihood ratios"),
    "fuse": ("spkrec.cli.calibration", "train and/or apply a linear logistic-regression fusion of systems' scores"),
    "simulate-spoofs": ("spkrec.cli.spoof", "simulated spoofing attacks (Griffin-Lim, replay, WORLD) of a data dir"),
    "train-cm": ("spkrec.cli.spoof", "train a GMM spoofing countermeasure (bona fide vs spoof GMMs)"),
    "score-cm": ("spkrec.cli.spoof", "score utterances with a GMM countermeasure (log-likelihood ratio)"),
    "cm-threshold": ("spkrec.cli.spoof", "a CM threshold from held-out CM scores by a policy (Bayes, bona fide miss)"),
    "eval-cm": ("spkrec.cli.spoof", "CM EER per attack, min t-DCF, SASV EERs of CM (and ASV) scores"),
    "export-system": ("spkrec.cli.system", "bundle trained models, front end, calibration and thresholds in one dir"),
    "enroll": ("spkrec.cli.system", "enrol speakers from audio files into a speaker database of a system"),
    "verify": ("spkrec.cli.system", "verify a claimed speaker on audio files: score, calibrated LLR, accept/reject"),
    "identify-files": ("spkrec.cli.system", "identify the speaker of audio files among the enrolled ones"),
    "evaluate": ("spkrec.cli.eval", "EER, minDCF, actual DCF, Cllr, minCllr and AUC of a score file"),
    "identify": ("spkrec.cli.eval", "closed-set identification accuracy (top-1/top-k) and confusion matrix"),
    "plot-det": ("spkrec.cli.eval", "DET curves of one or more score files on probit axes"),
    "plot-hist": ("spkrec.cli.plots", "target/non-target score histograms with the EER and Bayes thresholds"),
    "plot-confusion": ("spkrec.cli.plots", "confusion matrix of the best identifier among score files"),
    "plot-em": ("spkrec.cli.plots", "EM objective per iteration of UBM and i-vector extractor training"),
    "plot-ape": ("spkrec.cli.plots", "Bayes error rate (APE) against the prior of raw and calibrated scores"),
    "plot-map": ("spkrec.cli.plots", "2-D PCA / t-SNE map of i-vectors or embeddings coloured by speaker"),
    "results-table": ("spkrec.cli.eval", "one row per system (EER, minDCF, actDCF, Cllr, minCllr, top-k) as Markdown"),
    "diarize": ("spkrec.cli.diarization", "who spoke when: speaker turns of audio files as RTTM (i-vector/RNN bundle)"),
    "score-diarization": ("spkrec.cli.diarization", "DER (miss, false alarm, confusion) and JER of an RTTM against a reference"),
    "train-diarization-backend": ("spkrec.cli.diarization", "PLDA/cosine back end on window vectors of background speakers (for diarize)"),
    "simulate-conversations": ("spkrec.cli.diarization", "simulated multi-speaker conversations with reference RTTMs from a data dir"),
}


VERBOSITY_ENV = "SPKREC_VERBOSITY"
_OUTPUT_HELP = ("output: warnings and errors at once, then one summary line (the last message) when the command "
                "succeeds; progress bars with ETA on stderr when it is a terminal; -v prints every message; "
                "SPKREC_LOG_FILE=FILE appends every message, debug included, to FILE (the recipes' logs)")

# verb -> {old spelling: new spelling}: options renamed so that one name means one thing in every verb; the
# old spelling still works (hidden from --help) so that scripts written for it keep running
RENAMED_OPTIONS = {
    "train-ubm": {"--var-floor": "--variance-floor-factor"},       # relative, as train-ivector-extractor's
    "identify-files": {"--top": "--top-k"},                         # as identify, results-table, classify-rnn
    "enroll": {"--list": "--from-list"},                            # as make-data-dir (--from-dir, --from-list)
    "evaluate": {"--p-target": "--target-prior"},                   # as train-calibration, fuse, verify...
    "plot-det": {"--p-target": "--target-prior"},
    "results-table": {"--p-target": "--target-prior"},
    "score-cosine": {"--backend": "--backend-model"},               # --backend is the parallel back end
    "export-system": {"--backend": "--backend-model"},
}


def rename_options(parser, renames):
    """Give the options ``renames`` (``{old: new}``) their new spelling in ``parser``; the old one stays
    accepted as a hidden alias (a copy of the option under the old name, same destination, not listed by
    --help, so that an error about it names the spelling that was typed)."""
    for old, new in renames.items():
        action = parser._option_string_actions.get(old)
        if action is None or new in parser._option_string_actions:
            raise ValueError(f"cannot rename {old} to {new}")  # a programming error in RENAMED_OPTIONS
        alias = copy.copy(action)
        action.option_strings = [new if o == old else o for o in action.option_strings]
        if action.metavar is None and action.nargs != 0:
            action.metavar = new.lstrip("-").replace("-", "_").upper()
        parser._option_string_actions[new] = action
        alias.option_strings = [old]
        parser._option_string_actions[old] = alias  # parsed, but not among the listed actions
        spelled = re.compile(re.escape(old) + r"(?![-\w])")
        for other in parser._actions:  # the other options' help names the new spelling too
            if isinstance(other.help, str):
                other.help = spelled.sub(new, other.help)


def build_parser(verb):
    """``(parser, run)`` of a verb: its argparse parser (with -v/-q and the renamed options' old spellings)
    and the function that runs it on the parsed arguments."""
    module_name, help_ = VERBS[verb]
    parser = _Parser(prog=f"spkrec {verb}", description=help_, epilog=_OUTPUT_HELP)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every message, debug and per-chunk progress included (also: "
                             "SPKREC_VERBOSITY=verbose)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="print warnings and errors only (also: SPKREC_VERBOSITY=quiet)")
    add_arguments, run = importlib.import_module(module_name).COMMANDS[verb]
    add_arguments(parser)
    rename_options(parser, RENAMED_OPTIONS.get(verb, {}))
    return parser, run


def _top_help():
    width = max(len(v) for v in VERBS)
    lines = ["usage: spkrec <verb> [options]   (spkrec <verb> --help for a verb's options)", "",
             "Classical speaker recognition with Kaldi-style data dirs.", "", "verbs:"]
    lines += [f"  {verb:<{width}}  {help_}" for verb, (_, help_) in VERBS.items()]
    return "\n".join(lines)


_OS_HINTS = {
    errno.EACCES: "check the permissions, or choose another output directory",
    errno.EPERM: "check the permissions, or choose another output directory",
    errno.EROFS: "the file system is read-only; write the outputs elsewhere",
    errno.EISDIR: "this path is a directory; give a file name",
    errno.ENOTDIR: "a component of this path is a file, not a directory; fix the path",
    errno.ENOSPC: "the disk is full; free space or write elsewhere",
    errno.EDQUOT: "the disk quota is exceeded; free space or write elsewhere",
    errno.ENOENT: "check the path",
    errno.EEXIST: "remove it or choose another path",
    errno.EMFILE: "too many open files; raise `ulimit -n` or lower --nj",
}


def error_line(exc):
    """One line ``<what> (<file>); <what to do>`` for an exception that is not a :class:`SpkrecError`."""
    if isinstance(exc, OSError):
        what = exc.strerror or exc.__class__.__name__
        files = " -> ".join(repr(os.fsdecode(f)) for f in (exc.filename, exc.filename2) if f is not None)
        hint = _OS_HINTS.get(exc.errno, "check the path and its permissions")
        return f"{what}" + (f" ({files})" if files else "") + f"; {hint}"
    if isinstance(exc, UnicodeError):
        return (f"a text input is not UTF-8 ({exc}); spkrec reads and writes UTF-8 text: convert the file "
                "(e.g. `iconv -f latin1 -t utf-8`)")
    if isinstance(exc, OverflowError):
        return f"a number is too large ({exc}); check the input tables for inf or huge values"
    if isinstance(exc, MemoryError):
        return "out of memory; lower --nj or the model sizes, or use a machine with more memory"
    text = str(exc).strip().splitlines()
    return (f"unexpected {exc.__class__.__name__}" + (f": {text[0][:200]}" if text else "")
            + "; check the inputs (re-run with --verbose for the traceback, and report it if the inputs are fine)")


class _Parser(argparse.ArgumentParser):
    """Names the option in an :class:`~spkrec.cli.common.OptionRangeError` raised by its type."""

    def _get_value(self, action, arg_string):
        try:
            return super()._get_value(action, arg_string)
        except OptionRangeError as err:
            name = "/".join(action.option_strings) or action.metavar or action.dest
            raise OptionRangeError(f"argument {name}: {err}; give a value in range") from None


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_top_help())
        return 0
    if argv[0] == "--version":
        from spkrec import __version__
        print(f"spkrec {__version__}")
        return 0
    verb = argv[0]
    if verb not in VERBS:
        print(f"spkrec: unknown verb {verb!r}; `spkrec --help` lists them", file=sys.stderr)
        return 2
    # -v/-q (else $SPKREC_VERBOSITY) decide what the terminal shows from the start (import errors included)
    opts = argv[1:argv.index("--")] if "--" in argv else argv[1:]
    env = os.environ.get(VERBOSITY_ENV, "").strip().lower()
    verbose = "-v" in opts or "--verbose" in opts or (env == "verbose" and not {"-q", "--quiet"} & set(opts))
    quiet = not verbose and ("-q" in opts or "--quiet" in opts or env == "quiet")
    from spkrec.cli.common import CommandLogging
    logs = CommandLogging(verb, verbose=verbose, quiet=quiet)
    try:
        with logs:
            try:
                parser, run = build_parser(verb)
                args = parser.parse_args(argv[1:])
                from spkrec.parallel import tune_allocator
                tune_allocator()  # steady per-utterance temporaries in this process too (--nj 1)
                result = run(args)
            except (SpkrecError, OptionRangeError) as err:
                return _fail(logs, f"spkrec {verb}: error: {err}", 1)
            except KeyboardInterrupt:
                return _fail(logs, f"spkrec {verb}: interrupted", 130)
            except Exception as exc:  # OSError, model-format and shape errors...: one line, traceback with -v
                if verbose:
                    traceback.print_exc()
                logs.to_file(traceback.format_exc().rstrip())
                return _fail(logs, f"spkrec {verb}: error: {error_line(exc)}", 1)
            logs.summary()
    finally:
        sys.stderr.flush()
    return int(result or 0)


def _fail(logs, line, code):
    """Print the error line on the terminal and into the log file; return the exit code."""
    print(line, file=sys.stderr)
    logs.to_file(line)
    return code


if __name__ == "__main__":
    sys.exit(main())
