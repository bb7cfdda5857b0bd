"""Options shared by several verbs."""
from spkrec.parallel import ParallelConfig


def add_parallel_args(parser):
    """``--nj``, ``--backend``, ``--scheduler`` (the role of Kaldi's ``cmd.sh``)."""
    g = parser.add_argument_group("parallel execution")
    g.add_argument("--nj", type=int, default=1, help="number of parallel jobs (default 1)")
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
    g.add_argument("--deltas-order", type=int, default=None, help=f"delta order (default: {hint}2)")
    g.add_argument("--cmvn", choices=["sliding", "utterance", "none", "warp"], default=None,
                   help=f"feature normalisation (default: {hint}sliding)")
    g.add_argument("--cmvn-window", type=int, default=None, help=f"CMVN window in frames (default: {hint}300)")


def feature_options(args, stored=None):
    """Feature options: the command line's, else those ``stored`` with a model, else the defaults."""
    stored = stored if isinstance(stored, dict) else {}
    return {key: getattr(args, key) if getattr(args, key, None) is not None else stored.get(key, default)
            for key, default in FEATURE_DEFAULTS}


def feature_loader(data, opts):
    """A :class:`~spkrec.features.pipeline.FeatureLoader` on ``DATA/feats.scp`` (+ ``vad.scp`` if present)."""
    import os

    from spkrec.errors import SpkrecError
    from spkrec.features.pipeline import FeatureLoader
    feats = os.path.join(data, "feats.scp")
    if not os.path.exists(feats):
        raise SpkrecError(f"{feats}: file not found; run `spkrec compute-feats` on {data} first")
    vad = os.path.join(data, "vad.scp")
    return FeatureLoader(feats, vad if os.path.exists(vad) else None, **opts)


def model_file(path, default_name):
    """A model path given as a file, or as a directory holding ``default_name``.

    A directory, or a path that does not exist yet and does not end in ``.npz`` (an output directory
    to be created), means ``path/default_name``; anything else is the file itself.
    """
    import os
    if os.path.isdir(path) or (not os.path.exists(path) and not path.endswith(".npz")):
        return os.path.join(path, default_name)
    return path
