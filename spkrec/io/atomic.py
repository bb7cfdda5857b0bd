"""Atomic outputs (temporary file in the same directory, then ``os.replace``) and pickle-free model files.

Outputs get the permissions ``open()`` would give them (``0666`` minus the umask), not ``mkstemp``'s
``0600``, so group members and cluster jobs can read them when the umask allows it. Temporary files
carry the host and PID of their writer (``.<name>.<host>-<pid>.<random>.tmp``); those left by a killed
writer (same host, PID no longer running) are removed by the next write into that directory.
"""
import contextlib
import json
import os
import re
import socket
import tempfile

import numpy as np

from spkrec.errors import SpkrecError

FORMAT_VERSION = 1


def current_umask():
    """The process umask (read from ``/proc/self/status`` where possible, which changes nothing)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_file_mode():
    """``0666 & ~umask``: the mode ``open(path, "w")`` gives a new file."""
    return 0o666 & ~current_umask()


def owner_tag():
    """``<host>-<pid>`` of this process, as temporary names carry it (host reduced to ``[A-Za-z0-9.]``)."""
    host = re.sub(r"[^A-Za-z0-9.]", "", socket.gethostname()) or "host"
    return f"{host}-{os.getpid()}"


def owner_is_dead(tag):
    """Whether ``tag`` (from :func:`owner_tag`) names a process of this host that no longer runs."""
    host, _, pid = tag.rpartition("-")
    if not pid.isdigit() or host != owner_tag().rpartition("-")[0]:
        return False  # another host's (or a foreign) file: never touched
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OSError):
        return False  # running under another user
    return False


_TMP_NAME = re.compile(r"^\.(?P<base>.+)\.(?P<tag>[A-Za-z0-9.]+-\d+)\.[A-Za-z0-9_]+\.tmp$")
_cleaned_dirs = set()


def remove_stale_temporaries(directory):
    """Remove the ``.*.tmp`` files of :func:`atomic_path` in ``directory`` whose writer has died.

    Only files of this host and user whose PID is no longer running; returns the names removed.
    """
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    uid = os.getuid() if hasattr(os, "getuid") else None
    for name in names:
        m = _TMP_NAME.match(name)
        if not m or not owner_is_dead(m.group("tag")):
            continue
        path = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            if uid is None or os.lstat(path).st_uid == uid:
                os.remove(path)
                removed.append(name)
    return removed


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A killed or failing writer therefore never leaves a truncated ``path`` behind. The file gets the
    mode ``open()`` would give it under the current umask (whatever the writer does to the temporary
    path, as long as it writes into it rather than replacing it).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise SpkrecError(f"{path}: is a directory; give a file name for this output")
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    if directory not in _cleaned_dirs:
        _cleaned_dirs.add(directory)
        remove_stale_temporaries(directory)
    base = os.path.basename(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.{owner_tag()}.", suffix=".tmp", dir=directory)
    try:
        os.fchmod(fd, default_file_mode())
    finally:
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


class ModelArrays(dict):
    """The arrays of a model file; a missing one raises :class:`SpkrecError` naming the file."""

    def __init__(self, path, arrays):
        super().__init__(arrays)
        self.path = path

    def __missing__(self, key):
        raise SpkrecError(f"{self.path}: model file has no array {key!r} (incomplete or from another program); "
                          "delete it and re-run the stage that trains it")


def read_npz_header(path, arrays=None):
    """The JSON header ``{"kind", "format_version", "meta"}`` of a :func:`save_npz` file.

    ``arrays`` (a loaded ``{name: array}``) avoids reading the file again. Raises :class:`SpkrecError`
    when the file is missing, unreadable, has no header or a corrupt one.
    """
    path = os.fspath(path)
    if arrays is None:
        if not os.path.exists(path):
            raise SpkrecError(f"{path}: model file not found; run the stage that trains it first")
        try:
            with np.load(path, allow_pickle=False) as z:
                raw = z["__header__"] if "__header__" in z.files else None
        except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError ...
            raise SpkrecError(f"{path}: not a readable spkrec model file ({exc}); "
                              "delete it and re-run its stage") from None
    else:
        raw = arrays.get("__header__")
    if raw is None:
        raise SpkrecError(f"{path}: no spkrec header; this is not a spkrec model file")
    try:
        header = json.loads(np.asarray(raw).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError is a ValueError
        raise SpkrecError(f"{path}: corrupt model header ({exc.__class__.__name__}: {exc}); "
                          "delete it and re-run the stage that trains it") from None
    if not isinstance(header, dict) or not isinstance(header.get("kind"), str) \
            or not isinstance(header.get("meta", {}), dict) or not isinstance(header.get("format_version", 0), int):
        raise SpkrecError(f"{path}: corrupt model header (no kind/format_version/meta); "
                          "delete it and re-run the stage that trains it")
    return header


def load_npz(path, kind=None):
    """Load a file written by :func:`save_npz`; returns ``(arrays, meta)``.

    Raises :class:`SpkrecError` when the file is missing, corrupt (bad header, missing array when
    one is looked up in ``arrays``), of another kind or a newer format.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: model file not found; run the stage that trains it first")
    if os.path.isdir(path):
        raise SpkrecError(f"{path}: is a directory, not a model file; give the .npz file")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, ValueError, OSError ...
        raise SpkrecError(f"{path}: not a readable spkrec model file ({exc}); delete it and re-run its stage") from None
    header = read_npz_header(path, arrays)
    arrays.pop("__header__")
    if kind is not None and header.get("kind") != kind:
        raise SpkrecError(f"{path}: holds a {header.get('kind')!r} model, expected {kind!r}")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise SpkrecError(f"{path}: written by a newer spkrec (format {header['format_version']}); upgrade spkrec")
    return ModelArrays(path, arrays), header.get("meta", {})
