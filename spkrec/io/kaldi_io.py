"""Kaldi ark/scp tables of float32 matrices and vectors (binary Kaldi format, via kaldiio).

An scp line is ``<key> <rxfilename>`` where the rxfilename is ``/abs/path/x.ark:<byte offset>``
(optionally with a ``[rows]`` range), readable by Kaldi, ``kaldiio.load_scp`` and :func:`load_matrix`.
Writers are atomic and write the ark first, then the scp, so an existing scp always points into a
complete ark; ark paths in the scp are absolute (as Kaldi's ``make_mfcc.sh`` makes them).
"""
import os

import kaldiio
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.atomic import atomic_path, write_lines_atomic
from spkrec.io.datadir import read_table


def read_scp(path):
    """Read an scp file into ``{key: rxfilename}`` (file order); malformed lines name ``file:line``."""
    return read_table(path, min_fields=2, max_fields=None, what=os.path.basename(os.fspath(path)))


def load_matrix(rxfilename, name=None):
    """Load one matrix (2-D) or vector (1-D) from an rxfilename such as ``feats.ark:1234``.

    ``name`` (e.g. ``"data/train/feats.scp:7"``) is used in error messages.
    Returns the array as stored (float32 for spkrec's own files).
    """
    try:
        return kaldiio.load_mat(rxfilename)
    except Exception as exc:  # FileNotFoundError, ValueError from a corrupt ark ...
        where = f"{name}: " if name else ""
        raise SpkrecError(f"{where}cannot read {rxfilename!r} ({exc.__class__.__name__}: {exc}); "
                          "re-run the stage that wrote it") from None


def _write_table(ark_path, scp_path, items, ndim):
    ark_path, scp_path = os.fspath(ark_path), os.fspath(scp_path)
    ark_abs = os.path.abspath(ark_path)
    lines, seen = [], set()
    with atomic_path(ark_path) as tmp:
        with open(tmp, "wb") as fd:
            for key, array in items:
                key = str(key)
                if not key or any(c.isspace() for c in key):
                    raise SpkrecError(f"{ark_path}: key {key!r} is empty or contains whitespace; "
                                      "Kaldi keys are single tokens")
                if key in seen:
                    raise SpkrecError(f"{ark_path}: duplicate key {key!r}; keys in a table must be unique")
                seen.add(key)
                array = np.asarray(array, dtype=np.float32)
                if array.ndim != ndim:
                    what = "matrix" if ndim == 2 else "vector"
                    raise ValueError(f"{key}: expected a {what} ({ndim}-D array), got shape {array.shape}")
                fd.write(key.encode("utf-8") + b" ")
                lines.append(f"{key} {ark_abs}:{fd.tell()}")
                kaldiio.save_mat(fd, np.ascontiguousarray(array))
    write_lines_atomic(scp_path, lines)
    return len(lines)


def write_matrices(ark_path, scp_path, items):
    """Write ``(key, (rows, cols) array)`` pairs as float32 matrices to a binary ark plus its scp.

    Atomic: the ark is written to a temporary file and renamed, then the scp likewise.
    Returns the number of matrices written.
    """
    return _write_table(ark_path, scp_path, items, ndim=2)


def write_vectors(ark_path, scp_path, items):
    """Write ``(key, (dim,) array)`` pairs as float32 Kaldi vectors (ark then scp, atomic)."""
    return _write_table(ark_path, scp_path, items, ndim=1)


def iter_matrices(scp_path):
    """Yield ``(key, array)`` for every line of an scp file, in file order."""
    scp_path = os.fspath(scp_path)
    for lineno, (key, rx) in enumerate(read_scp(scp_path).items(), 1):
        yield key, load_matrix(rx, name=f"{scp_path}:{lineno}")


def read_vectors(scp_path):
    """Read a vector scp: returns ``(keys, vectors)`` with ``vectors`` of shape ``(n, dim)`` float32."""
    scp_path = os.fspath(scp_path)
    keys, rows, dim = [], [], None
    for lineno, (key, rx) in enumerate(read_scp(scp_path).items(), 1):
        v = np.asarray(load_matrix(rx, name=f"{scp_path}:{lineno}"), dtype=np.float32)
        if v.ndim == 2 and 1 in v.shape:
            v = v.reshape(-1)
        if v.ndim != 1:
            raise SpkrecError(f"{scp_path}:{lineno}: {key!r} is a {v.shape} matrix, not a vector; "
                              "pass a vector table (e.g. ivector.scp)")
        if dim is None:
            dim = v.shape[0]
        elif v.shape[0] != dim:
            raise SpkrecError(f"{scp_path}:{lineno}: {key!r} has dimension {v.shape[0]}, earlier vectors "
                              f"have {dim}; all vectors in one table must have the same dimension")
        keys.append(key)
        rows.append(v)
    if not keys:
        raise SpkrecError(f"{scp_path}: empty vector table; re-run the stage that writes it")
    return keys, np.stack(rows).astype(np.float32, copy=False)


_BINARY_TYPES = {b"FM ": (4, 2), b"DM ": (8, 2), b"FV ": (4, 1), b"DV ": (8, 1)}


def matrix_shape(rxfilename, with_end=False):
    """Shape of the matrix/vector at ``rxfilename`` read from its header only (no data).

    With ``with_end`` also returns the byte offset just past the object in the ark (``None`` for
    compressed or range-limited entries, whose shape is then found by loading them).
    """
    path, _, offset = rxfilename.rpartition(":")
    header = None
    if path and offset.isdigit():
        try:
            with open(path, "rb") as f:
                f.seek(int(offset))
                header = f.read(15)
        except OSError as exc:
            raise SpkrecError(f"cannot read {rxfilename!r} ({exc}); re-run the stage that wrote it") from None
    if header is not None and header[:2] == b"\0B" and header[2:5] in _BINARY_TYPES:
        size, ndim = _BINARY_TYPES[header[2:5]]
        dims = [int.from_bytes(header[6 + 5 * i:10 + 5 * i], "little", signed=True) for i in range(ndim)]
        if len(header) >= 5 + 5 * ndim and all(d >= 0 for d in dims):
            shape = tuple(dims)
            end = int(offset) + 5 + 5 * ndim + size * int(np.prod(shape))
            return (shape, end) if with_end else shape
    shape = np.shape(load_matrix(rxfilename))
    return (shape, None) if with_end else shape
