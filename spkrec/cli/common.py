"""Options shared by several verbs, and the argparse types that validate numeric options."""
import argparse
import math

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


def model_file(path, default_name):
    """A model path given as a file, or as a directory holding ``default_name``.

    A directory, or a path that does not exist yet and does not end in ``.npz`` (an output directory
    to be created), means ``path/default_name``; anything else is the file itself.
    """
    import os
    if os.path.isdir(path) or (not os.path.exists(path) and not path.endswith(".npz")):
        return os.path.join(path, default_name)
    return path
