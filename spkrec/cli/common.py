"""Options shared by several verbs, and the argparse types that validate numeric options."""
import argparse
import logging
import math
import os
import sys

from spkrec.errors import OptionRangeError
from spkrec.parallel import ParallelConfig


def _number(kind, low=None, low_open=False, high=None, high_open=False):
    """An argparse ``type`` parsing ``kind`` (int/float) and checking it lies in the given bounds.

    Text that is not a number is argparse's usual usage error; a number out of range raises
    :class:`OptionRangeError`.
    """
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") \
                from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            parts = []
            if low is not None:
                parts.append(f"{'>' if low_open else '>='} {low:g}")
            if high is not None:
                parts.append(f"{'<' if high_open else '<='} {high:g}")
            raise OptionRangeError(f"{text} is out of range: must be {' and '.join(parts)}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = _number(int, 1)
"""argparse type: an integer >= 1 (``--nj``, ``--num-gauss`` ...)."""
nonneg_int = _number(int, 0)
"""argparse type: an integer >= 0 (iteration counts, delta order)."""
positive_float = _number(float, 0.0, low_open=True)
"""argparse type: a finite number > 0 (relevance factor, floors, timeouts)."""
nonneg_float = _number(float, 0.0)
"""argparse type: a finite number >= 0 (pruning thresholds)."""
finite_float = _number(float)
"""argparse type: any finite number."""
probability = _number(float, 0.0, True, 1.0, True)
"""argparse type: a number strictly between 0 and 1."""
fraction = _number(float, 0.0, False, 1.0, True)
"""argparse type: a number in [0, 1)."""


def add_command_args(parser, tables="wav.scp"):
    """``--allow-commands`` and ``--command-timeout`` for tables whose entries may be ``cmd |``."""
    parser.add_argument("--allow-commands", action="store_true",
                        help=f"run {tables} entries that are shell commands ('cmd |'); off by default "
                             "because a command can run any program")
    parser.add_argument("--command-timeout", type=positive_float, default=300.0, metavar="SECONDS",
                        help="kill a table command after this many seconds (default %(default)g)")


def command_options(args):
    """``{"allow_commands", "command_timeout"}`` from :func:`add_command_args` options."""
    return {"allow_commands": bool(getattr(args, "allow_commands", False)),
            "command_timeout": float(getattr(args, "command_timeout", 300.0))}


def add_parallel_args(parser):
    """``--nj``, ``--backend``, ``--scheduler`` (the role of Kaldi's ``cmd.sh``)."""
    g = parser.add_argument_group("parallel execution")
    g.add_argument("--nj", type=positive_int, default=1, help="number of parallel jobs (default 1)")
    g.add_argument("--backend", choices=["loky", "dask"], default="loky",
                   help="joblib backend: local processes (loky) or a Dask cluster (dask)")
    g.add_argument("--scheduler", default=None,
                   help="Dask scheduler address tcp://HOST:PORT (default: a local cluster of --nj workers)")


def parallel_config(args):
    """Build a :class:`~spkrec.parallel.ParallelConfig` from parsed ``add_parallel_args`` options, and
    apply spkrec's BLAS threading rule to this process: :func:`~spkrec.parallel.driver_threads` threads
    for the driver's own work (the usable cores, or ``$SPKREC_BLAS_THREADS``; the same for any ``--nj``),
    one thread for chunk work here and in every worker."""
    from spkrec.parallel import set_driver_threads
    set_driver_threads()
    return ParallelConfig(nj=args.nj, backend=args.backend, scheduler=args.scheduler)


FEATURE_DEFAULTS = (("deltas_order", 2), ("cmvn", "sliding"), ("cmvn_window", 300))


def add_feature_args(parser, default_source=None):
    """``--deltas-order``, ``--cmvn``, ``--cmvn-window``: how FeatureLoader post-processes ``feats.scp``.

    ``default_source`` (e.g. ``"the UBM"``) names the model whose stored options apply when not given.
    """
    hint = f"as {default_source}, else " if default_source else ""
    g = parser.add_argument_group("features (FeatureLoader on DATA/feats.scp and DATA/vad.scp)")
    g.add_argument("--deltas-order", type=nonneg_int, default=None, help=f"delta order (default: {hint}2)")
    g.add_argument("--cmvn", choices=["sliding", "utterance", "none", "warp"], default=None,
                   help=f"feature normalisation (default: {hint}sliding)")
    g.add_argument("--cmvn-window", type=positive_int, default=None,
                   help=f"CMVN window in frames (default: {hint}300)")
    add_command_args(g, "feats.scp/vad.scp")


def feature_options(args, stored=None):
    """Feature options: the command line's, else those ``stored`` with a model, else the defaults."""
    stored = stored if isinstance(stored, dict) else {}
    return {key: getattr(args, key) if getattr(args, key, None) is not None else stored.get(key, default)
            for key, default in FEATURE_DEFAULTS}


def feature_loader(data, opts, commands=None):
    """A :class:`~spkrec.features.pipeline.FeatureLoader` on ``DATA/feats.scp`` (+ ``vad.scp`` if present).

    ``commands``: :func:`command_options` of the verb (default: command entries are refused).
    """
    import os

    from spkrec.errors import SpkrecError
    from spkrec.features.pipeline import FeatureLoader
    feats = os.path.join(data, "feats.scp")
    if not os.path.exists(feats):
        raise SpkrecError(f"{feats}: file not found; run `spkrec compute-feats` on {data} first")
    vad = os.path.join(data, "vad.scp")
    return FeatureLoader(feats, vad if os.path.exists(vad) else None, **opts, **(commands or {}))


def add_scoring_io_args(parser, what, models_help):
    """The positional arguments of a scoring verb after its background model: MODELS TEST_DATA TRIALS SCORES."""
    parser.add_argument("models", metavar="MODELS", help=models_help)
    parser.add_argument("test_data", metavar="TEST_DATA", help="data dir with the test utterances' feats.scp")
    parser.add_argument("trials", metavar="TRIALS", help=f"trials: <{what}> <test-id> [target|nontarget]")
    parser.add_argument("scores", metavar="SCORES", help=f"output score file: <{what}> <test-id> <score>")


def read_checked_trials(args, known_models, loader, missing_model):
    """``args.trials`` rows ``(model, test, label)`` whose models are in ``known_models`` and whose test
    utterances are in ``args.test_data``'s feats.scp; else a one-line error (``missing_model(where, model)``
    words the unknown model's, ``where`` being ``TRIALS:LINE``)."""
    import os

    from spkrec.errors import SpkrecError
    from spkrec.io.trials import read_trials_with_lines
    trials, lines = read_trials_with_lines(args.trials, require_labels=False)
    known = set(loader.utt_ids)
    for (model, test, _), lineno in zip(trials, lines):
        if model not in known_models:
            raise SpkrecError(missing_model(f"{args.trials}:{lineno}", model))
        if test not in known:
            raise SpkrecError(f"{args.trials}:{lineno}: test utterance {test!r} is not in "
                              f"{os.path.join(args.test_data, 'feats.scp')}; compute its features "
                              "or remove the trial")
    return trials


def model_file(path, default_name):
    """A model path given as a file, or as a directory holding ``default_name``.

    A directory, or a path that does not exist yet and does not end in ``.npz`` (an output directory
    to be created), means ``path/default_name``; anything else is the file itself.
    """
    import os
    if os.path.isdir(path) or (not os.path.exists(path) and not path.endswith(".npz")):
        return os.path.join(path, default_name)
    return path


# ---------------------------------------------------------------------------------------------- logging
VERBOSITY_ENV = "SPKREC_VERBOSITY"
"""Environment variable giving the default of ``-v``/``-q`` (``verbose`` or ``quiet``; the recipes set it)."""
LOG_FILE_ENV = "SPKREC_LOG_FILE"
"""Environment variable naming a log file that gets every message of the command, DEBUG included (appended)."""


class _SummaryHandler(logging.Handler):
    """The terminal's handler: WARNING and above at once; INFO messages held back, the last one printed
    by :meth:`summary` when the command has succeeded (one line per command; the log file and ``-v``
    have them all). With ``immediate`` (``-v``) every message is printed at once."""

    def __init__(self, stream, immediate=False):
        super().__init__()
        self.stream, self.immediate, self.held = stream, immediate, None

    def emit(self, record):
        try:
            if self.immediate or record.levelno >= logging.WARNING:
                _write_above_bars(self.stream, self.format(record))
            else:
                self.held = record
        except Exception:  # a closed stream: never fail the command for a message
            self.handleError(record)

    def summary(self):
        if self.held is not None:
            _write_above_bars(self.stream, self.format(self.held))
            self.held = None


def _write_above_bars(stream, text):
    """Write a line to the terminal without breaking a progress bar (tqdm's write when one is shown)."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None and getattr(tqdm.tqdm, "_instances", None):
        tqdm.tqdm.write(text, file=stream)
    else:
        stream.write(text + "\n")
        stream.flush()


class CommandLogging:
    """Logging of one ``spkrec <verb>`` run: the terminal gets warnings and errors at once and one summary
    line at the end (the command's last INFO message; ``quiet``: none; ``verbose``: every message, DEBUG
    included), and progress bars when stderr is a terminal (not with ``quiet`` or ``verbose``); the
    ``log_file`` (default ``$SPKREC_LOG_FILE``) gets every message with its time and level. Use as a
    context manager around the command; :meth:`summary` after it succeeded, :meth:`to_file` for the error
    line that the CLI prints itself."""

    def __init__(self, verb, verbose=False, quiet=False, log_file=None, stream=None):
        self.verb, self.verbose, self.quiet = verb, verbose, quiet and not verbose
        self.log_file = log_file if log_file is not None else os.environ.get(LOG_FILE_ENV) or None
        # as logging.basicConfig: a program that has configured logging itself (root handlers) keeps its own
        # terminal output; the records reach its handlers (the log file still gets them all)
        self.own_terminal = stream is not None or not logging.getLogger().handlers
        self.stream = stream if stream is not None else sys.stderr

    def __enter__(self):
        from spkrec import parallel
        self.logger = logging.getLogger("spkrec")
        self._saved = (self.logger.level, parallel.PROGRESS_BAR)
        self.terminal = _SummaryHandler(self.stream, immediate=self.verbose)
        self.terminal.setFormatter(logging.Formatter(f"spkrec {self.verb}: %(message)s"))
        self.terminal.setLevel(logging.DEBUG if self.verbose else logging.WARNING if self.quiet else logging.INFO)
        self.handlers = [self.terminal] if self.own_terminal else []
        self.file = None
        if self.log_file:
            self.file = logging.FileHandler(self.log_file, mode="a", encoding="utf-8", delay=True)
            self.file.setFormatter(logging.Formatter(f"%(asctime)s spkrec {self.verb} %(levelname)s: %(message)s",
                                                     "%H:%M:%S"))
            self.file.setLevel(logging.DEBUG)
            self.handlers.append(self.file)
        self.py_warnings = logging.getLogger("py.warnings")  # warnings.warn(...) of any library, as WARNINGs
        if self.own_terminal:  # a program with its own logging (pytest) keeps its own warnings handling too
            logging.captureWarnings(True)
        for h in self.handlers:
            self.logger.addHandler(h)
            self.py_warnings.addHandler(h)
        self.logger.setLevel(min([h.level for h in self.handlers] or [self.logger.level]))
        try:
            tty = self.stream.isatty()
        except (AttributeError, ValueError):
            tty = False
        parallel.PROGRESS_BAR = tty and not self.quiet and not self.verbose
        parallel.PROGRESS_STREAM = self.stream
        return self

    def summary(self):
        self.terminal.summary()

    def to_file(self, message, level=logging.ERROR):
        """Write ``message`` to the log file only (the CLI prints its error line to the terminal itself)."""
        if self.file is not None:
            self.file.handle(logging.LogRecord("spkrec", level, "", 0, message, None, None))

    def __exit__(self, *exc):
        from spkrec import parallel
        if self.own_terminal:
            logging.captureWarnings(False)
        for h in self.handlers:
            self.logger.removeHandler(h)
            self.py_warnings.removeHandler(h)
            h.close()
        self.logger.setLevel(self._saved[0])
        parallel.PROGRESS_BAR, parallel.PROGRESS_STREAM = self._saved[1], None
        return False
