"""One way to map per-utterance work: joblib with the local ``loky`` backend or a Dask cluster.

Every per-utterance loop in spkrec goes through :func:`map_chunks` (or :func:`map_items`), so the
``--nj``/``--backend``/``--scheduler`` options mean the same thing in every command. Work is split
into contiguous chunks whose results come back **in input order**, so reductions over chunks are
done in a fixed order and results do not depend on the number of workers.
"""
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Optional

import joblib

log = logging.getLogger("spkrec")


@dataclass(frozen=True)
class ParallelConfig:
    """How to run per-utterance work.

    nj : number of parallel jobs (workers); 1 runs in-process.
    backend : ``"loky"`` (local processes) or ``"dask"`` (a Dask cluster via joblib's dask backend).
    scheduler : Dask scheduler address (``tcp://HOST:PORT``); with ``backend="dask"`` and no
        scheduler, a local cluster with ``nj`` single-threaded workers on 127.0.0.1 is started.
    """
    nj: int = 1
    backend: str = "loky"
    scheduler: Optional[str] = None


SERIAL = ParallelConfig()


def chunk(items, num_chunks):
    """Split ``items`` (a sequence) into at most ``num_chunks`` contiguous, near-equal lists."""
    items = list(items)
    if not items:
        return []
    num_chunks = max(1, min(int(num_chunks), len(items)))
    size = math.ceil(len(items) / num_chunks)
    return [items[i:i + size] for i in range(0, len(items), size)]


_dask_clients = {}


def _dask_client(config):
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        from spkrec.errors import SpkrecError
        raise SpkrecError("--backend dask needs Dask: pip install 'spkrec[dask]' "
                          "(or pip install 'dask[distributed]')") from None
    key = (config.scheduler, config.nj)
    if key not in _dask_clients:
        if config.scheduler:
            _dask_clients[key] = Client(config.scheduler)
        else:
            cluster = LocalCluster(n_workers=max(1, config.nj), threads_per_worker=1, host="127.0.0.1",
                                   dashboard_address=None, processes=True)
            _dask_clients[key] = Client(cluster)
    return _dask_clients[key]


@contextlib.contextmanager
def _backend(config):
    if config.backend == "dask":
        _dask_client(config)
        with joblib.parallel_config(backend="dask"):
            yield
    elif config.backend == "loky":
        with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
            yield
    else:
        from spkrec.errors import SpkrecError
        raise SpkrecError(f"unknown parallel backend {config.backend!r}; use 'loky' or 'dask'")


def map_chunks(func, items, config=SERIAL, chunks_per_job=4, desc=None, **kwargs):
    """Apply ``func(chunk_of_items, **kwargs)`` to contiguous chunks of ``items``.

    Returns the list of per-chunk results in input order. With ``config.nj == 1`` and the loky
    backend everything runs in this process (no pickling). ``func`` must be a module-level function
    so it can be sent to workers.
    """
    items = list(items)
    if not items:
        return []
    nj = max(1, int(config.nj))
    serial = nj == 1 and config.backend == "loky"
    # in-process: a few chunks only so progress can be reported; workers: several chunks each
    chunks = chunk(items, (20 if desc else 1) if serial else nj * chunks_per_job)
    start = time.time()
    results = []
    if serial:
        for i, c in enumerate(chunks):
            results.append(func(c, **kwargs))
            _progress(desc, i + 1, len(chunks), start)
        return results
    with _backend(config):
        par = joblib.Parallel(n_jobs=nj, return_as="generator")
        for i, r in enumerate(par(joblib.delayed(func)(c, **kwargs) for c in chunks)):
            results.append(r)
            _progress(desc, i + 1, len(chunks), start)
    return results


def map_items(func, items, config=SERIAL, desc=None, **kwargs):
    """Apply ``func(item, **kwargs)`` to every item; returns results in input order."""
    per_chunk = map_chunks(_apply_each, items, config, desc=desc, item_func=func, item_kwargs=kwargs)
    return [r for chunk_results in per_chunk for r in chunk_results]


def _apply_each(items, item_func, item_kwargs):
    return [item_func(item, **item_kwargs) for item in items]


def _progress(desc, done, total, start):
    if desc is None:
        return
    if done == total or done == 1 or done % max(1, total // 10) == 0:
        log.info("%s: %d/%d chunks (%.1f s)", desc, done, total, time.time() - start)
