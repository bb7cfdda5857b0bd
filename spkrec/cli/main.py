"""``spkrec`` entry point: dispatches ``spkrec <verb>`` to the module that implements the verb.

Each verb module defines ``COMMANDS = {verb: (add_arguments, run)}`` where ``add_arguments(parser)``
declares options and ``run(args)`` does the work. Only the chosen verb's module is imported, so
``spkrec --help`` is instant and an optional extra (torch, dask) is needed only by its own verbs.
"""
import argparse
import errno
import importlib
import logging
import os
import sys
import traceback

from spkrec.errors import OptionRangeError, SpkrecError

# verb -> (module, one-line help), in pipeline order
VERBS = {
    "prepare-data": ("spkrec.cli.data", "write a Kaldi-style data dir for a corpus (timit, so762, librispeech, voxceleb1)"),
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
    "train-full-ubm": ("spkrec.cli.ivector", "train a full-covariance UBM from a diagonal one"),
    "train-ivector-extractor": ("spkrec.cli.ivector", "train the total-variability matrix T by EM"),
    "extract-ivectors": ("spkrec.cli.ivector", "extract i-vectors (ivector.scp, spk_ivector.scp)"),
    "train-backend": ("spkrec.cli.backend", "train a back-end pipeline (center, LDA, WCCN, length norm, PLDA)"),
    "score-plda": ("spkrec.cli.backend", "score trials with a PLDA log-likelihood ratio"),
    "score-cosine": ("spkrec.cli.backend", "score trials by cosine similarity (after an optional back end)"),
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
    "export-system": ("spkrec.cli.system", "bundle trained models, front end, calibration and thresholds in one dir"),
    "enroll": ("spkrec.cli.system", "enrol speakers from audio files into a speaker database of a system"),
    "verify": ("spkrec.cli.system", "verify a claimed speaker on audio files: score, calibrated LLR, accept/reject"),
    "identify-files": ("spkrec.cli.system", "identify the speaker of audio files among the enrolled ones"),
    "evaluate": ("spkrec.cli.eval", "EER, minDCF, actual DCF, Cllr, minCllr and AUC of a score file"),
    "identify": ("spkrec.cli.eval", "closed-set identification accuracy (top-1/top-k) and confusion matrix"),
    "plot-det": ("spkrec.cli.eval", "DET curves of one or more score files on probit axes"),
    "results-table": ("spkrec.cli.eval", "one row per system (EER, minDCF, actDCF, Cllr, minCllr, top-k) as Markdown"),
}


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
    module_name, help_ = VERBS[verb]
    parser = _Parser(prog=f"spkrec {verb}", description=help_)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    parser.add_argument("-q", "--quiet", action="store_true", help="log warnings and errors only")
    try:
        module = importlib.import_module(module_name)
        add_arguments, run = module.COMMANDS[verb]
        add_arguments(parser)
        args = parser.parse_args(argv[1:])
        level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
        logging.basicConfig(level=level, format=f"spkrec {verb}: %(message)s", stream=sys.stderr)
        from spkrec.parallel import tune_allocator
        tune_allocator()  # steady per-utterance temporaries in this process too (--nj 1)
        result = run(args)
    except (SpkrecError, OptionRangeError) as err:
        print(f"spkrec {verb}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"spkrec {verb}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # OSError, model-format and shape errors...: one line, traceback with --verbose
        if "-v" in argv[1:] or "--verbose" in argv[1:]:
            traceback.print_exc()
        print(f"spkrec {verb}: error: {error_line(exc)}", file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
