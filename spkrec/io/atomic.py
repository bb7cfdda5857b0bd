"""Atomic outputs (temporary file in the same directory, then ``os.replace``) and pickle-free model files."""
import contextlib
import json
import os
import tempfile

import numpy as np

from spkrec.errors import SpkrecError

FORMAT_VERSION = 1


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A killed or failing writer therefore never leaves a truncated ``path`` behind.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def write_text_atomic(path, text):
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_lines_atomic(path, lines):
    """Write an iterable of lines (without newlines) to ``path`` atomically."""
    write_text_atomic(path, "".join(f"{line}\n" for line in lines))


def save_npz(path, kind, arrays, meta=None):
    """Save a model as ``.npz`` with named arrays plus a JSON header; atomic; loads without pickle.

    Parameters
    ----------
    path : str
        Destination (``.npz`` is not appended).
    kind : str
        Model type tag, checked by :func:`load_npz` (e.g. ``"DiagGMM"``).
    arrays : dict of str -> array_like
        Numeric arrays (no object arrays).
    meta : dict, optional
        JSON-serialisable hyper-parameters.
    """
    header = {"kind": kind, "format_version": FORMAT_VERSION, "meta": meta or {}}
    payload = {k: np.asarray(v) for k, v in arrays.items()}
    for k, v in payload.items():
        if v.dtype == object:
            raise TypeError(f"array {k!r} has dtype object; model files hold numeric arrays only")
    payload["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)


def load_npz(path, kind=None):
    """Load a file written by :func:`save_npz`; returns ``(arrays, meta)``.

    Raises :class:`SpkrecError` when the file is missing, corrupt, of another kind or a newer format.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: model file not found; run the stage that trains it first")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError ...
        raise SpkrecError(f"{path}: not a readable spkrec model file ({exc}); delete it and re-run its stage") from None
    if "__header__" not in arrays:
        raise SpkrecError(f"{path}: no spkrec header; this is not a spkrec model file")
    header = json.loads(arrays.pop("__header__").tobytes().decode("utf-8"))
    if kind is not None and header.get("kind") != kind:
        raise SpkrecError(f"{path}: holds a {header.get('kind')!r} model, expected {kind!r}")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise SpkrecError(f"{path}: written by a newer spkrec (format {header['format_version']}); upgrade spkrec")
    return arrays, header.get("meta", {})
