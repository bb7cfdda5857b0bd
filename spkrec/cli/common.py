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
    """Build a :class:`~spkrec.parallel.ParallelConfig` from parsed ``add_parallel_args`` options."""
    return ParallelConfig(nj=args.nj, backend=args.backend, scheduler=args.scheduler)
