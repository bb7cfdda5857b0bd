"""The one place that imports PyTorch (lazily), plus seeding and atomic checkpoint files."""
import contextlib
import importlib
import os

from spkrec.errors import SpkrecError

INSTALL_HINT = "pip install 'spkrec[rnn]' (or pip install torch==2.13.0)"


def require_torch():
    """Return the ``torch`` module, or raise :class:`SpkrecError` with the install hint if it is missing."""
    try:
        return importlib.import_module("torch")
    except ImportError:
        raise SpkrecError(f"RNN and CNN speaker embeddings need PyTorch: {INSTALL_HINT}") from None


def seed_everything(seed):
    """Seed torch's generator; returns a ``numpy.random.Generator`` seeded with ``seed``."""
    import numpy as np
    require_torch().manual_seed(int(seed))
    return np.random.default_rng(int(seed))


@contextlib.contextmanager
def deterministic(warn_only=False):
    """Run the block with ``torch.use_deterministic_algorithms(True)``, then restore the previous setting.

    ``warn_only`` (used on GPUs, where some kernels have no deterministic version): warn instead of failing.
    """
    torch = require_torch()
    before = torch.are_deterministic_algorithms_enabled()
    before_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=warn_only)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)


@contextlib.contextmanager
def torch_threads(num_threads):
    """Run the block with ``num_threads`` torch intra-op threads (``None``: leave as is), then restore.

    One thread is the default of spkrec's RNN code: these small recurrent models gain little from a
    second thread, and OpenMP threads spinning on a busy machine can make each step many times slower.
    Parallelism over utterances comes from ``--nj`` (processes) instead.
    """
    torch = require_torch()
    before = torch.get_num_threads()
    if num_threads:
        torch.set_num_threads(int(num_threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def save_torch_atomic(obj, path):
    """``torch.save`` to a temporary file next to ``path``, then ``os.replace`` (no torn file if killed)."""
    from spkrec.io.atomic import atomic_path
    torch = require_torch()
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path, what="model"):
    """Load a file written by :func:`save_torch_atomic` with ``weights_only=True`` (no pickled code)."""
    torch = require_torch()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: {what} file not found; run `spkrec train-rnn` (or train-cnn) first")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt zip, unexpected types ...
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise SpkrecError(f"{path}: not a readable spkrec {what} ({type(exc).__name__}: {first}); "
                          "delete it and re-run training") from None
