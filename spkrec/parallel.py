"""One way to map per-utterance work: joblib with the local ``loky`` backend or a Dask cluster.

Every per-utterance loop in spkrec goes through :func:`map_chunks` (or :func:`map_items`,
:func:`reduce_chunks`), so the ``--nj``/``--backend``/``--scheduler`` options mean the same thing in
every command. Work is split into contiguous chunks whose number depends on the number of items
only (never on ``nj`` or the backend), and results come back **in input order**; reductions over
chunks are therefore done in a fixed order and results are bit-identical for any number of workers
and either backend.

Threads: chunk work runs with one BLAS/OpenMP thread in every process -- in loky and Dask workers and in
this process when ``nj == 1`` (:func:`chunk_threads`) -- so the per-chunk numbers never depend on ``nj``
and small per-chunk matrices never pay for idle threads; ``nj`` processes give the parallelism. The
driver's own work between maps (M-steps, back ends) uses :func:`driver_threads` (the usable cores),
whatever ``nj``. With ``backend="dask"`` and no scheduler, a local cluster of
``nj`` single-threaded worker processes on 127.0.0.1 is started once per process and closed at exit
(or by :func:`shutdown`); with ``scheduler="tcp://HOST:PORT"`` the existing cluster is used. Dask
reschedules the tasks of a worker that dies; functions must therefore be free of side effects other
than writing their own output files atomically.
"""
import atexit
import contextlib
import logging
import operator
import os
import shutil
import tempfile
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Optional

import joblib
import numpy as np

log = logging.getLogger("spkrec")

NUM_CHUNKS = 64
"""Default number of chunks per call (fewer when there are fewer items); fixed so results do not
depend on ``nj``. Enough for load balancing on a 32-worker cluster; few enough that per-chunk
results (sufficient statistics) stay cheap to send back."""


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


def _shared_folder(nbytes):
    """Where to put shared arrays: ``$SPKREC_TEMP_FOLDER``, else ``/dev/shm`` (RAM, as joblib) when it has
    room for twice ``nbytes``, else the system temporary directory."""
    folder = os.environ.get("SPKREC_TEMP_FOLDER")
    if folder:
        return folder
    try:
        stat = os.statvfs("/dev/shm")
        if stat.f_bavail * stat.f_frsize > 2 * nbytes and os.access("/dev/shm", os.W_OK):
            return "/dev/shm"
    except OSError:
        pass
    return None


_STALE_FOLDER = None  # compiled lazily: spkrec-(shared|results)-<host>-<pid>-<random>
_swept = set()


def _private_tempdir(kind, folder):
    """``tempfile.mkdtemp`` named ``spkrec-<kind>-<host>-<pid>-*`` in ``folder``; first removes, once per
    process and folder, such folders of this user left by processes of this host that no longer run
    (a killed run's ``/dev/shm`` arrays)."""
    import re
    from spkrec.io.atomic import owner_is_dead, owner_tag
    global _STALE_FOLDER
    base = folder or tempfile.gettempdir()
    if base not in _swept:
        _swept.add(base)
        if _STALE_FOLDER is None:
            _STALE_FOLDER = re.compile(r"^spkrec-(?:shared|results)-(?P<tag>[A-Za-z0-9.]+-\d+)-[A-Za-z0-9_]+$")
        with contextlib.suppress(OSError):
            for name in os.listdir(base):
                m = _STALE_FOLDER.match(name)
                path = os.path.join(base, name)
                if m and owner_is_dead(m.group("tag")) and os.lstat(path).st_uid == os.getuid():
                    shutil.rmtree(path, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"spkrec-{kind}-{owner_tag()}-", dir=folder)


class SharedArrays:
    """Large read-only arrays that every chunk needs (a model), sent once instead of once per chunk.

    With local worker processes (loky, ``nj > 1``) the arrays are saved once to a temporary directory
    (in ``/dev/shm`` when there is room, see :func:`_shared_folder`) that is removed when this object is
    garbage collected; pickling sends the paths only and workers
    memory-map the files (one copy in the page cache for all workers; with ``mapped=True`` this process
    too, so the caller can drop its arrays).  Otherwise (in-process, or Dask
    workers that may not see this machine's disk) the arrays travel with the object.  ``token``
    identifies the contents, so workers can cache arrays derived from them (see :meth:`cached`).
    """

    _worker_cache = {}  # token -> {name: array}: the latest shared arrays, in worker processes
    _worker_files = {}  # token -> {name: memory-mapped file}, in worker processes (at most MAPPED_TOKENS)

    def __init__(self, arrays, config=SERIAL, mapped=False):
        self.token = os.urandom(16).hex()
        self._arrays = dict(arrays)
        self._dir = None
        if config.backend == "loky" and max(1, int(config.nj)) > 1:
            nbytes = sum(np.asarray(a).nbytes for a in self._arrays.values())
            self._dir = _private_tempdir("shared", _shared_folder(nbytes))
            weakref.finalize(self, shutil.rmtree, self._dir, True)
            for name, array in self._arrays.items():
                np.save(os.path.join(self._dir, f"{name}.npy"), np.asarray(array), allow_pickle=False)
            if mapped:  # this process reads the files too: one copy in RAM, shared with the workers
                self._arrays = _map_files(self._dir, sorted(self._arrays))

    def __getstate__(self):
        if self._dir is not None:
            return dict(token=self.token, dir=self._dir, names=sorted(self._arrays))
        return dict(token=self.token, arrays=self._arrays)

    def __setstate__(self, state):
        self.token, self._dir = state["token"], None
        if "arrays" in state:
            self._arrays = state["arrays"]
        else:  # memory-mapped once per process for the latest MAPPED_TOKENS contents (60 blocks: 10 ms a task)
            mapped = SharedArrays._worker_files
            if self.token not in mapped:
                while len(mapped) >= MAPPED_TOKENS:
                    mapped.pop(next(iter(mapped)))
                mapped[self.token] = _map_files(state["dir"], state["names"])
            self._arrays = dict(mapped[self.token])
        self._in_worker = True

    def __getitem__(self, name):
        return self._arrays[name]

    def cached(self, name, compute):
        """``compute()`` once per object here, and once per worker process (for these contents) in a
        worker; only the latest shared arrays' derived values are kept in a worker."""
        own = self.__dict__.setdefault("_derived", {})
        if name not in own:
            if self.__dict__.get("_in_worker", False):
                cache = SharedArrays._worker_cache
                if self.token not in cache:
                    cache.clear()
                    cache[self.token] = {}
                if name not in cache[self.token]:
                    cache[self.token][name] = compute()
                own[name] = cache[self.token][name]
            else:
                own[name] = compute()
        return own[name]


MAPPED_TOKENS = 2
"""Shared contents whose files a worker process keeps mapped (a file deleted by the driver stays in RAM
until its mapping goes: at most this many sets per worker)."""


def _map_files(folder, names):
    return {name: np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r", allow_pickle=False) for name in names}


def chunk(items, num_chunks):
    """Split ``items`` into ``min(num_chunks, len(items))`` contiguous lists whose sizes differ by at most one."""
    items = list(items)
    if not items:
        return []
    num_chunks = max(1, min(int(num_chunks), len(items)))
    size, extra = divmod(len(items), num_chunks)
    bounds = [i * size + min(i, extra) for i in range(num_chunks + 1)]
    return [items[bounds[i]:bounds[i + 1]] for i in range(num_chunks)]


# ---------------------------------------------------------------------------------------------- Dask
_dask_lock = threading.Lock()
_dask_clients = {}  # (scheduler, nj) -> (Client, LocalCluster or None)


def _dask_client(config):
    """The Dask client of ``config`` (created once per process; local clusters bind 127.0.0.1 only)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        from spkrec.errors import SpkrecError
        raise SpkrecError("--backend dask needs Dask: pip install 'spkrec[dask]' "
                          "(or pip install 'dask[distributed]')") from None
    key = (config.scheduler, None if config.scheduler else max(1, int(config.nj)))
    with _dask_lock:
        if key not in _dask_clients:
            if config.scheduler:
                try:
                    client = Client(config.scheduler, set_as_default=False)
                except (OSError, TimeoutError) as err:
                    from spkrec.errors import SpkrecError
                    raise SpkrecError(f"--scheduler {config.scheduler}: cannot connect to the Dask scheduler "
                                      f"({err}); start `dask scheduler` there or fix the address") from None
                _dask_clients[key] = (client, None)
            else:
                cluster = LocalCluster(n_workers=key[1], threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=None,
                                       scheduler_kwargs={"dashboard_address": "127.0.0.1:0"})
                _dask_clients[key] = (Client(cluster, set_as_default=False), cluster)
            if len(_dask_clients) == 1:
                atexit.register(shutdown)
        return _dask_clients[key][0]


def shutdown():
    """Close the Dask clients and the local clusters started by this process (also run at exit)."""
    with _dask_lock:
        entries = list(_dask_clients.values())
        _dask_clients.clear()
    for client, cluster in entries:
        with contextlib.suppress(Exception):
            client.close()
        if cluster is not None:
            with contextlib.suppress(Exception):
                cluster.close()


# ---------------------------------------------------------------------------------------------- BLAS threads
CHUNK_THREADS = 1
"""BLAS/OpenMP threads of chunk work (the functions given to :func:`map_chunks`), in every process."""
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
              "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
"""Environment variables read by BLAS/OpenMP libraries when they are loaded (later imports follow them)."""

_controller_cache = [None, -1]  # [threadpoolctl.ThreadpoolController, len(sys.modules) when made]
_worker_limited = [-1]          # len(sys.modules) when worker_threads() last applied the limit here


def usable_cores():
    """CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def driver_threads():
    """BLAS threads of the driver's own work between maps (M-steps, back ends): ``$SPKREC_BLAS_THREADS``,
    else :func:`usable_cores` -- never a function of ``nj`` or the backend, so that work gives the same
    numbers for any ``--nj``."""
    value = os.environ.get("SPKREC_BLAS_THREADS", "").strip()
    if value:
        try:
            if int(value) >= 1:
                return int(value)
        except ValueError:
            pass
        from spkrec.errors import SpkrecError
        raise SpkrecError(f"SPKREC_BLAS_THREADS={value!r}: expected a whole number >= 1; fix or unset it")
    return usable_cores()


def _controller():
    """A threadpoolctl controller of the loaded BLAS/OpenMP libraries (rebuilt, 2 ms, when modules were imported)."""
    import sys
    if _controller_cache[0] is None or _controller_cache[1] != len(sys.modules):
        from threadpoolctl import ThreadpoolController
        _controller_cache[:] = [ThreadpoolController(), len(sys.modules)]
    return _controller_cache[0]


def _set_threads(n):
    """``n`` threads for every loaded BLAS/OpenMP library, and for those loaded later (environment)."""
    for name in THREAD_ENV:
        os.environ[name] = str(n)
    _controller().limit(limits=n)


def set_driver_threads(threads=None):
    """Apply the driver's rule to this process (the CLI does it in ``parallel_config``): ``threads``
    (default :func:`driver_threads`) BLAS threads outside chunks; chunk work still gets one."""
    _set_threads(driver_threads() if threads is None else max(1, int(threads)))


def worker_threads():
    """Give this worker process (loky or Dask) one BLAS/OpenMP thread, also for libraries loaded later;
    re-applied when modules were imported since (cheap otherwise). Called before every task."""
    import sys
    if _worker_limited[0] != len(sys.modules):
        _set_threads(CHUNK_THREADS)
        torch = sys.modules.get("torch")
        if torch is not None and hasattr(torch, "set_num_threads"):
            torch.set_num_threads(CHUNK_THREADS)
        _worker_limited[0] = len(sys.modules)


@contextlib.contextmanager
def chunk_threads():
    """Run chunk work in this process (``nj == 1``) under the workers' rule: one BLAS/OpenMP (and torch)
    thread, then restore. Libraries loaded meanwhile start with one thread and get the driver's count
    afterwards, as they would have had if loaded in the driver."""
    import sys
    saved = {name: os.environ.get(name) for name in THREAD_ENV}
    before = {lib.filepath for lib in _controller().lib_controllers}
    torch = sys.modules.get("torch")
    torch_threads = torch.get_num_threads() if torch is not None and hasattr(torch, "get_num_threads") else None
    if torch_threads is not None:
        torch.set_num_threads(CHUNK_THREADS)
    try:
        for name in THREAD_ENV:
            os.environ[name] = str(CHUNK_THREADS)
        with _controller().limit(limits=CHUNK_THREADS):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if torch_threads is not None:
            torch.set_num_threads(torch_threads)
        new = [lib for lib in _controller().lib_controllers if lib.filepath not in before]
        if new:
            threads = _env_threads(saved)
            for lib in new:
                lib.set_num_threads(threads)


def _env_threads(env):
    """Threads a library loaded under ``env`` starts with (OpenBLAS/OpenMP conventions): the driver's count
    after :func:`set_driver_threads`, else the user's ``OPENBLAS_NUM_THREADS``/``OMP_NUM_THREADS`` or the cores."""
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        try:
            return max(1, int(env.get(name) or ""))
        except ValueError:
            continue
    return usable_cores()


_allocator_tuned = False
MMAP_THRESHOLD = 32 << 20  # glibc's own dynamic ceiling for the threshold
TRIM_THRESHOLD = 64 << 20


def tune_allocator():
    """Let glibc's malloc serve blocks up to 32 MiB from the heap and keep up to 64 MiB of freed heap.

    By default blocks over 128 KiB are mmapped and page-faulted in afresh on every allocation until
    the dynamic threshold has been raised by frees; a fresh worker process thus spends a third of its
    Baum-Welch statistics time in page faults on the (frames, D(D+1)/2) temporaries (measured: 14.2 vs
    9.4 ms per utterance).  No-op when not on glibc; called once per process (workers and the CLI).
    """
    global _allocator_tuned
    if _allocator_tuned:
        return
    _allocator_tuned = True
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-1, TRIM_THRESHOLD)  # M_TRIM_THRESHOLD
        libc.mallopt(-3, MMAP_THRESHOLD)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):
        pass


STASH_BYTES = 1 << 20  # local workers hand back arrays of at least this size through files


class _Stashed:
    """A result array that a local worker saved to the shared folder; the driver loads and deletes it."""

    def __init__(self, path):
        self.path = path


def _map_arrays(result, leaf):
    """``result`` with ``leaf`` applied to every value inside its (nested) dicts, lists and tuples."""
    if isinstance(result, dict):
        return {k: _map_arrays(v, leaf) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        items = [_map_arrays(v, leaf) for v in result]
        return items if isinstance(result, list) else tuple(items)
    return leaf(result)


def _stash(result, folder, prefix):
    """``result`` with its big numeric arrays saved under ``folder`` (as :class:`_Stashed` paths)."""
    def save(value):
        if isinstance(value, np.ndarray) and value.nbytes >= STASH_BYTES and value.dtype != object:
            path = os.path.join(folder, f"{prefix}-{os.urandom(6).hex()}.npy")
            np.save(path, value, allow_pickle=False)
            return _Stashed(path)
        return value
    return _map_arrays(result, save)


def _unstash(result):
    """``result`` with the arrays of its :class:`_Stashed` paths loaded (and their files deleted)."""
    def load(value):
        if not isinstance(value, _Stashed):
            return value
        array = np.load(value.path, allow_pickle=False)
        os.unlink(value.path)
        return array
    return _map_arrays(result, load)


def _run_local(func, items, kwargs, folder=None):
    """Task run by a local (loky) worker: one BLAS thread and the allocator tuned (once per process),
    then ``func``; with a (RAM-backed) ``folder``, big result arrays come back as files instead of
    through the pipe (3x less driver time for the 22 MB accumulators of a T-matrix E-step chunk)."""
    worker_threads()
    tune_allocator()
    result = func(items, **kwargs)
    return result if folder is None else _stash(result, folder, str(os.getpid()))


def _run_on_worker(func, items, kwargs):
    """Task run by a Dask worker: one BLAS thread per worker process (see :func:`worker_threads`), the
    arguments' arrays aligned (see :func:`_aligned`), then ``func``."""
    worker_threads()
    tune_allocator()
    items, kwargs = _aligned((items, kwargs))
    return func(items, **kwargs)


def _aligned(obj, _seen=None):
    """``obj`` with every array inside it (containers, and attributes of spkrec objects, changed in place)
    aligned to its item size. Dask hands arrays out of its network buffers at any byte offset; numpy
    multiplies unaligned arrays without BLAS, in another order of additions than for the same numbers
    in the driver or a loky worker (measured: the mini recipe's T matrix moved by 2e-10 with 2 Dask
    workers, and every i-vector score file changed)."""
    if isinstance(obj, np.ndarray):
        return obj if obj.flags.aligned or obj.dtype.hasobject else obj.copy(order="K")
    _seen = set() if _seen is None else _seen
    if id(obj) in _seen:
        return obj
    _seen.add(id(obj))
    if isinstance(obj, dict):
        return {k: _aligned(v, _seen) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        items = [_aligned(v, _seen) for v in obj]
        return items if isinstance(obj, list) else tuple(items)
    if type(obj).__module__.startswith("spkrec") and isinstance(getattr(obj, "__dict__", None), dict):
        for key, value in list(vars(obj).items()):
            vars(obj)[key] = _aligned(value, _seen)
    return obj


@contextlib.contextmanager
def _backend(config):
    if config.backend == "dask":
        client = _dask_client(config)
        with joblib.parallel_config(backend="dask", client=client):
            yield
    elif config.backend == "loky":
        with joblib.parallel_config(backend="loky", inner_max_num_threads=1):
            yield
    else:
        from spkrec.errors import SpkrecError
        raise SpkrecError(f"unknown parallel backend {config.backend!r}; use 'loky' or 'dask'")


# ---------------------------------------------------------------------------------------------- mapping
def _iter_chunks(func, items, config, desc, max_chunks, kwargs):
    """Yield ``func(chunk, **kwargs)`` for the chunks of ``items``, in input order."""
    items = list(items)
    if not items:
        return
    chunks = chunk(items, NUM_CHUNKS if max_chunks is None else max_chunks)
    progress = _Progress(desc, len(chunks))
    try:
        yield from _iter_chunk_results(func, chunks, config, kwargs, progress)
    finally:
        progress.close()


def _iter_chunk_results(func, chunks, config, kwargs, progress):
    if max(1, int(config.nj)) == 1 and config.backend == "loky":  # in-process: no pickling
        for i, c in enumerate(chunks):
            with chunk_threads():  # the workers' rule: one BLAS thread for chunk work
                r = func(c, **kwargs)
            progress.update(i + 1)
            yield r
        return
    folder = _shared_folder(0) if config.backend == "loky" else None  # a RAM-backed folder for results
    if folder is not None:
        folder = _private_tempdir("results", folder)
    try:
        with _backend(config):
            if config.backend == "dask":
                calls = (joblib.delayed(_run_on_worker)(func, c, kwargs) for c in chunks)
            else:
                calls = (joblib.delayed(_run_local)(func, c, kwargs, folder) for c in chunks)
            par = joblib.Parallel(n_jobs=max(1, int(config.nj)), return_as="generator")
            for i, r in enumerate(par(calls)):
                progress.update(i + 1)
                yield _aligned(r) if config.backend == "dask" else _unstash(r)
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


def map_chunks(func, items, config=SERIAL, desc=None, max_chunks=None, **kwargs):
    """Apply ``func(chunk_of_items, **kwargs)`` to contiguous chunks of ``items``.

    Returns the list of per-chunk results in input order. The chunks depend on ``len(items)`` and
    ``max_chunks`` (default :data:`NUM_CHUNKS`) only, never on ``config``, so a reduction over the
    results in list order gives the same numbers for any ``nj`` and backend. With ``config.nj == 1`` and the loky backend
    everything runs in this process (no pickling). ``func`` must be a module-level function so it
    can be sent to workers; ``desc`` turns on progress logging.
    """
    return list(_iter_chunks(func, items, config, desc, max_chunks, kwargs))


def iter_chunks(func, items, config=SERIAL, desc=None, max_chunks=None, **kwargs):
    """:func:`map_chunks` as a generator: each chunk's result as soon as it (and those before it) is done,
    in input order, so the caller can keep or drop results one by one."""
    return _iter_chunks(func, items, config, desc, max_chunks, kwargs)


def reduce_chunks(func, items, config=SERIAL, combine=operator.add, desc=None, max_chunks=None, **kwargs):
    """Fold the per-chunk results of ``func`` with ``combine(total, result)`` in input order.

    Like :func:`map_chunks` (same chunks, same order, so the same numbers for any ``nj`` and
    backend), but holds one running total instead of all per-chunk results: use it for large
    sufficient statistics. Returns ``None`` when ``items`` is empty.
    """
    total = None
    for i, result in enumerate(_iter_chunks(func, items, config, desc, max_chunks, kwargs)):
        total = result if i == 0 else combine(total, result)
    return total


def map_items(func, items, config=SERIAL, desc=None, **kwargs):
    """Apply ``func(item, **kwargs)`` to every item; returns results in input order."""
    per_chunk = map_chunks(_apply_each, items, config, desc=desc, item_func=func, item_kwargs=kwargs)
    return [r for chunk_results in per_chunk for r in chunk_results]


def _apply_each(items, item_func, item_kwargs):
    return [item_func(item, **item_kwargs) for item in items]


# ---------------------------------------------------------------------------------------------- progress
PROGRESS_BAR = None
"""Progress bars (tqdm, with ETA) for the maps given a ``desc``: True, False, or None (the default: when
stderr is a terminal and the ``spkrec`` logger shows INFO messages). The CLI sets it: bars when stderr is
a terminal, unless ``-q`` or ``-v``. The per-chunk lines are DEBUG messages (the log file, ``-v``)."""
PROGRESS_STREAM = None
"""Where the bars go (default ``sys.stderr``)."""
PROGRESS_DELAY = float(os.environ.get("SPKREC_PROGRESS_DELAY", "0.5") or 0.5)
"""Seconds a step runs before its bar appears (short steps never show one); ``$SPKREC_PROGRESS_DELAY``."""


def _bars_on():
    if PROGRESS_BAR is not None:
        return bool(PROGRESS_BAR)
    import sys
    try:
        return sys.stderr.isatty() and log.isEnabledFor(logging.INFO)
    except (AttributeError, ValueError):
        return False


class _Progress:
    """Progress of one map over ``total`` chunks: a tqdm bar (see :data:`PROGRESS_BAR`) and DEBUG lines
    ``DESC: i/total chunks (t s)`` (about ten per map); nothing when ``desc`` is None."""

    def __init__(self, desc, total):
        self.desc, self.total, self.start, self.bar = desc, total, time.time(), None
        if desc is not None and _bars_on():
            try:
                from tqdm import tqdm
            except ImportError:  # a core dependency; without it, no bar
                return
            import sys
            stream = PROGRESS_STREAM or sys.stderr
            try:
                sized = os.get_terminal_size(stream.fileno()).columns > 0
            except (AttributeError, OSError, ValueError):
                sized = False  # not a real terminal, or one without a size (a bare pty, where tqdm shows nothing)
            size = {} if sized else {"ncols": 80, "nrows": 24}
            self.bar = tqdm(total=total, desc=desc, unit="chunk", leave=False, file=stream, dynamic_ncols=sized,
                            delay=PROGRESS_DELAY, mininterval=0.2, **size)

    def update(self, done):
        if self.desc is None:
            return
        if self.bar is not None:
            self.bar.update(done - self.bar.n)
        if done == self.total or done == 1 or done % max(1, self.total // 10) == 0:
            log.debug("%s: %d/%d chunks (%.1f s)", self.desc, done, self.total, time.time() - self.start)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
