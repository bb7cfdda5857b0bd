"""Kaldi ark/scp tables of float32 matrices and vectors (binary Kaldi format).

An scp line is ``<key> <rxfilename>`` where the rxfilename is ``/abs/path/x.ark:<byte offset>``
(optionally with a ``[rows]`` or ``[rows,cols]`` range), readable by Kaldi, ``kaldiio.load_scp`` and
:func:`load_matrix`. Writers are atomic and write the ark first, then the scp, so an existing scp always
points into a complete ark; ark paths in the scp are absolute (as Kaldi's ``make_mfcc.sh`` makes them).

Reading is restricted on purpose: an entry must be ``path`` or ``path:offset`` of a Kaldi binary
matrix/vector (``\\0B`` then ``FM``, ``DM``, ``FV``, ``DV``, compressed ``CM``/``CM2``/``CM3`` or an int32
vector) or a Kaldi text matrix. A command entry (``cmd |``) runs only with ``allow_commands=True``
(``--allow-commands``) and then with stdin closed and a timeout; a pickled object (kaldiio's ``PKL``),
``NPY``, audio or anything else is refused, always. kaldiio's own loader (which runs pipes and
unpickles) is never called on a table entry; only its decoders of compressed and text matrices are, on
an already checked, open file.
"""
import io
import os

import kaldiio
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.atomic import atomic_path, write_lines_atomic
from spkrec.io.command import DEFAULT_TIMEOUT, is_command, refuse_command, run_command
from spkrec.io.datadir import read_table

_BINARY_TYPES = {b"FM": ("<f4", 2), b"DM": ("<f8", 2), b"FV": ("<f4", 1), b"DV": ("<f8", 1)}
_COMPRESSED_TYPES = (b"CM", b"CM2", b"CM3")
_REFUSED_MAGIC = {b"PKL": "a pickled Python object (kaldiio 'PKL'), which spkrec never loads "
                          "(unpickling can run any code)",
                  b"NPY": "a NumPy array in kaldiio's 'NPY' form, not a Kaldi matrix",
                  b"RIF": "a WAV file, not a feature matrix", b"fLa": "a FLAC file, not a feature matrix",
                  b"AUD": "audio in kaldiio's 'AUDIO' form, not a feature matrix"}
_REMEDY = "re-run the stage that wrote it (Kaldi binary FM/DM/FV/DV/CM or text matrices only)"


def read_scp(path, allow_commands=False, line_numbers=None):
    """Read an scp file into ``{key: rxfilename}`` (file order); malformed lines name ``file:line``.

    A command entry (``cmd |``) is an error naming its line unless ``allow_commands``. A dict passed as
    ``line_numbers`` receives ``{key: 1-based line}``.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    lines = {} if line_numbers is None else line_numbers
    table = read_table(path, min_fields=2, max_fields=None, what=name, line_numbers=lines)
    if not allow_commands:
        for key, rx in table.items():
            if is_command(rx):
                raise refuse_command(rx, f"{path}:{lines[key]}", name)
    return table


def parse_rxfilename(rxfilename):
    """``"path[:offset][[range]]"`` -> ``(path, offset or None, slices or None)`` (Kaldi's rxfilename).

    A range is Kaldi's inclusive ``[r1:r2]`` or ``[r1:r2,c1:c2]`` (either part may be empty).
    """
    rx = rxfilename.strip()
    slices = None
    if rx.endswith("]") and "[" in rx:
        base, _, spec = rx[:-1].rpartition("[")
        try:
            slices = tuple(_range_slice(part) for part in spec.split(","))
        except ValueError:
            slices = None
        else:
            rx = base
        if slices is not None and len(slices) > 2:
            raise ValueError(f"range [{spec}] has more than 2 dimensions")
    path, sep, offset = rx.rpartition(":")
    if sep and offset.isdigit():
        return path, int(offset), slices
    return rx, None, slices


def _range_slice(part):
    part = part.strip()
    if part in ("", ":"):
        return slice(None)
    lo, sep, hi = part.partition(":")
    if not sep:
        return slice(int(lo), int(lo) + 1)
    return slice(int(lo) if lo else None, int(hi) + 1 if hi else None)


def _read_array(f, dims, dtype, where):
    array = np.empty(dims, dtype=dtype)
    n = array.nbytes
    got = f.readinto(memoryview(array.reshape(-1)).cast("B")) if n else 0
    if got != n:
        raise SpkrecError(f"{where}: matrix data is truncated ({got} of {n} bytes); {_REMEDY}")
    return array


def read_kaldi_object(f, where="matrix"):
    """Read one Kaldi binary or text matrix/vector from the binary file ``f`` at its current position.

    Only known types are decoded; a pickle, NPY, audio or unknown data raises :class:`SpkrecError`
    naming ``where``.
    """
    start = f.tell()
    head = f.read(2)
    if head == b"\0B":
        kind = f.read(1)
        if kind == b"\4":  # int32 vector
            f.seek(start)
            return kaldiio.matio.read_int32vector(f)
        token = kind
        while len(token) < 4 and not token.endswith(b" "):
            c = f.read(1)
            if not c:
                break
            token += c
        token = token.rstrip(b" ")
        if token in _BINARY_TYPES:
            dtype, ndim = _BINARY_TYPES[token]
            header = f.read(5 * ndim)
            if len(header) != 5 * ndim or any(header[5 * i] != 4 for i in range(ndim)):
                raise SpkrecError(f"{where}: corrupt {token.decode()} header; {_REMEDY}")
            dims = tuple(int.from_bytes(header[5 * i + 1:5 * i + 5], "little", signed=True) for i in range(ndim))
            if any(d < 0 for d in dims):
                raise SpkrecError(f"{where}: corrupt {token.decode()} header (negative size {dims}); {_REMEDY}")
            return _read_array(f, dims, dtype, where)
        if token in _COMPRESSED_TYPES:
            f.seek(start)
            try:
                return kaldiio.matio.read_matrix_or_vector(f)
            except (ValueError, AssertionError, EOFError) as exc:
                raise SpkrecError(f"{where}: corrupt compressed matrix ({exc}); {_REMEDY}") from None
        raise SpkrecError(f"{where}: unknown Kaldi binary type {token.decode(errors='replace')!r}; {_REMEDY}")
    head += f.read(1)
    for magic, what in _REFUSED_MAGIC.items():
        if head == magic:
            raise SpkrecError(f"{where}: the entry is {what}; {_REMEDY}")
    if head[:1] in (b"[", b" ", b"\n", b"\t"):
        f.seek(start)
        try:
            return kaldiio.matio.read_ascii_mat(f)
        except Exception as exc:  # ValueError, RuntimeError, AssertionError, UnicodeDecodeError ...
            raise SpkrecError(f"{where}: corrupt text matrix ({exc.__class__.__name__}); {_REMEDY}") from None
    if not head:
        raise SpkrecError(f"{where}: no data at this offset (end of file); {_REMEDY}")
    raise SpkrecError(f"{where}: not a Kaldi matrix or vector (starts with {bytes(head)!r}); {_REMEDY}")


def load_matrix(rxfilename, name=None, allow_commands=False, command_timeout=DEFAULT_TIMEOUT):
    """Load one matrix (2-D) or vector (1-D) from an rxfilename such as ``feats.ark:1234``.

    ``name`` (e.g. ``"data/train/feats.scp:7"``) is used in error messages. A command entry
    (``cmd |``) runs only with ``allow_commands`` (stdin closed, killed after ``command_timeout`` s);
    its output must be one Kaldi matrix/vector too. Returns the array as stored (float32 for spkrec's
    own files).
    """
    where = f"{name}: {rxfilename.strip()!r}" if name else repr(rxfilename.strip())
    prefix = f"{name}: " if name else ""
    if is_command(rxfilename):
        if not allow_commands:
            raise refuse_command(rxfilename, name or "table", "feature/vector table")
        data = run_command(rxfilename, name or "table", command_timeout)
        return read_kaldi_object(io.BytesIO(data), where)
    try:
        path, offset, slices = parse_rxfilename(rxfilename)
    except ValueError as exc:
        raise SpkrecError(f"{where}: bad rxfilename ({exc}); use path or path:offset") from None
    if path in ("-", ""):
        raise SpkrecError(f"{where}: reading from standard input is not supported; list a file path")
    try:
        with open(path, "rb") as f:
            if offset:
                f.seek(offset)
            array = read_kaldi_object(f, where)
    except OSError as exc:  # FileNotFoundError, IsADirectoryError, PermissionError ...
        reason = exc.strerror or exc.__class__.__name__
        raise SpkrecError(f"{prefix}cannot read {path!r} ({reason}); re-run the stage that wrote it") from None
    if slices is not None:
        array = array[slices]
    return array


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


def read_vectors(scp_path, allow_commands=False):
    """Read a vector scp: returns ``(keys, vectors)`` with ``vectors`` of shape ``(n, dim)`` float32.

    Non-finite values (NaN, inf) are an error naming the line.
    """
    scp_path = os.fspath(scp_path)
    keys, rows, dim = [], [], None
    for lineno, (key, rx) in enumerate(read_scp(scp_path, allow_commands).items(), 1):
        v = np.asarray(load_matrix(rx, name=f"{scp_path}:{lineno}", allow_commands=allow_commands),
                       dtype=np.float32)
        if v.ndim == 2 and 1 in v.shape:
            v = v.reshape(-1)
        if v.ndim != 1:
            raise SpkrecError(f"{scp_path}:{lineno}: {key!r} is a {v.shape} matrix, not a vector; "
                              "pass a vector table (e.g. ivector.scp)")
        if not np.isfinite(v).all():
            raise SpkrecError(f"{scp_path}:{lineno}: vector {key!r} contains NaN or inf; re-run the stage "
                              "that wrote it (its input features or model are probably degenerate)")
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


def matrix_shape(rxfilename, with_end=False, allow_commands=False):
    """Shape of the matrix/vector at ``rxfilename`` read from its header only (no data).

    With ``with_end`` also returns the byte offset just past the object in the ark (``None`` for
    compressed or range-limited entries, whose shape is then found by loading them).
    """
    if not is_command(rxfilename):
        path, offset, slices = parse_rxfilename(rxfilename)
        header = None
        if slices is None:
            try:
                with open(path, "rb") as f:
                    f.seek(offset or 0)
                    header = f.read(15)
            except OSError as exc:
                raise SpkrecError(f"cannot read {rxfilename!r} ({exc.strerror or exc}); "
                                  "re-run the stage that wrote it") from None
        if header is not None and header[:2] == b"\0B" and header[2:4] in _BINARY_TYPES and header[4:5] == b" ":
            dtype, ndim = _BINARY_TYPES[header[2:4]]
            dims = [int.from_bytes(header[6 + 5 * i:10 + 5 * i], "little", signed=True) for i in range(ndim)]
            if len(header) >= 5 + 5 * ndim and all(d >= 0 for d in dims):
                shape = tuple(dims)
                end = (offset or 0) + 5 + 5 * ndim + np.dtype(dtype).itemsize * int(np.prod(shape))
                return (shape, end) if with_end else shape
    shape = np.shape(load_matrix(rxfilename, allow_commands=allow_commands))
    return (shape, None) if with_end else shape
