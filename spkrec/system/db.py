"""Speaker database: the enrolled speakers of one system, in one pickle-free ``.npz`` file.

A path ending in ``.npz`` is the file itself; any other path is a directory holding ``speakers.npz``.
The file records the fingerprint of the system that enrolled the speakers (its front end and the model
files enrolment depends on); :meth:`spkrec.system.System.load_db` refuses a database of another system.
Arrays: ``names`` (S,), ``data.<key>`` (sum of rows, ...) stacked over speakers in ``names`` order and
``rows`` / ``rows.<group>`` (S,): each speaker's number of rows in a group of keys. A key's group is the
key without its last dotted part (``"vectors"``: group ``""``; ``"norm.enroll_cohort"``: ``"norm"``;
``"c0.means"``: ``"c0"``): the keys of one group share their leading axis, groups need not (a fusion of a
GMM-UBM, one row per speaker, with an i-vector system, one row per enrolment file). Meta: the system's
fingerprint, kind and name, and each speaker's files.
"""
import os

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.atomic import load_npz, save_npz

DB_FILE = "speakers.npz"
DB_KIND = "SpeakerDB"


def key_group(key):
    """The group of an array key: ``"a.b.c"`` -> ``"a.b"``, ``"c"`` -> ``""``."""
    return key.rsplit(".", 1)[0] if "." in key else ""


def _rows_name(group):
    return "rows" if group == "" else f"rows.{group}"


def sub_arrays(arrays, owners, prefix):
    """The arrays and owners of the keys under ``prefix`` (``"c0"``), with the prefix removed."""
    p = prefix + "."
    sub = {k[len(p):]: v for k, v in arrays.items() if k.startswith(p)}
    own = {g[len(p):] if g != prefix else "": o for g, o in owners.items() if g == prefix or g.startswith(p)}
    return sub, own


def db_file(path):
    """``path`` itself when it ends in ``.npz``, else ``path/speakers.npz``."""
    path = os.fspath(path)
    return path if path.endswith(".npz") else os.path.join(path, DB_FILE)


class SpeakerDB:
    """Enrolled speakers: ``names`` in enrolment order, each with its arrays and enrolment files.

    system : the fingerprint of the system it belongs to; kind, system_name : for messages.
    """

    def __init__(self, system, kind, system_name=None):
        self.system = system
        self.kind = kind
        self.system_name = system_name
        self._entries = {}      # name -> {"arrays": {key: (rows, ...)}, "files": [...]}
        self._stacked = None    # cache: (arrays, owner)

    def __len__(self):
        return len(self._entries)

    def __contains__(self, name):
        return name in self._entries

    def __repr__(self):
        return f"SpeakerDB({len(self)} speakers of system {self.system_name or self.system[:12]})"

    @property
    def names(self):
        return list(self._entries)

    def files(self, name):
        return list(self._entries[name]["files"])

    def add(self, name, arrays, files=()):
        """Add speaker ``name`` (replacing an earlier enrolment of the same name)."""
        name = str(name)
        if not name.strip() or name != name.strip() or "\n" in name:
            raise SpkrecError(f"speaker name {name!r}: names must be non-empty without leading/trailing spaces")
        self._entries.pop(name, None)
        self._entries[name] = {"arrays": {k: np.asarray(v) for k, v in arrays.items()},
                               "files": [str(f) for f in files]}
        self._stacked = None

    def remove(self, name):
        """Remove speaker ``name``; an unknown name is an error listing the enrolled ones."""
        self.check_speaker(name)
        del self._entries[name]
        self._stacked = None

    def check_speaker(self, name, where=None):
        if name not in self._entries:
            known = ", ".join(self.names[:10]) + (" ..." if len(self) > 10 else "")
            raise SpkrecError(f"{where or 'speaker database'}: speaker {name!r} is not enrolled "
                              f"(enrolled: {known or 'none'}); enrol it first with `spkrec enroll`")

    def stacked(self, names=None):
        """``(arrays, owners)`` of the speakers ``names`` (default all, cached): each key's rows stacked over
        the speakers, and ``owners[group]`` (rows,) the speaker index of each row of that key group."""
        if names is None and self._stacked is not None:
            return self._stacked
        entries = [self._entries[n] for n in (self.names if names is None else names)]
        if not entries:
            raise SpkrecError("the speaker database is empty; enrol speakers first with `spkrec enroll`")
        keys = entries[0]["arrays"].keys()
        arrays = {k: np.concatenate([e["arrays"][k] for e in entries]) for k in keys}
        owners = {}
        for k in keys:
            g = key_group(k)
            if g not in owners:
                owners[g] = np.repeat(np.arange(len(entries)), [len(e["arrays"][k]) for e in entries])
        if names is None:
            self._stacked = (arrays, owners)
        return arrays, owners

    def save(self, path):
        """Write the database to ``path`` (``.npz`` file or directory), atomically."""
        if not len(self):
            arrays = {"names": np.array([], dtype=str), "rows": np.zeros(0, np.int64)}
        else:
            data, owners = self.stacked()
            arrays = {"names": np.array(self.names, dtype=str)}
            arrays.update({_rows_name(g): np.bincount(o, minlength=len(self)).astype(np.int64)
                           for g, o in owners.items()})
            arrays.update({f"data.{k}": v for k, v in data.items()})
        meta = {"system": self.system, "kind": self.kind, "system_name": self.system_name,
                "files": {n: e["files"] for n, e in self._entries.items()}}
        save_npz(db_file(path), DB_KIND, arrays, meta)

    @classmethod
    def load(cls, path):
        """Read a database written by :meth:`save` (no check against a system: see ``System.load_db``)."""
        file = db_file(path)
        if not os.path.exists(file):
            raise SpkrecError(f"{file}: speaker database not found; create it with `spkrec enroll`")
        arrays, meta = load_npz(file, DB_KIND)
        if "system" not in meta:
            raise SpkrecError(f"{file}: no system fingerprint in this speaker database; enrol the speakers again")
        db = cls(meta["system"], meta.get("kind"), meta.get("system_name"))
        names = arrays["names"].tolist()
        data = {k[len("data."):]: v for k, v in arrays.items() if k.startswith("data.")}
        starts, owners = {}, {}
        for k in data:
            g = key_group(k)
            if g not in starts:
                if _rows_name(g) not in arrays:
                    raise SpkrecError(f"{file}: no row counts for the arrays {g or 'data'}.*; enrol the speakers again")
                rows = arrays[_rows_name(g)].astype(np.int64)
                starts[g] = np.concatenate([[0], np.cumsum(rows)])
                owners[g] = np.repeat(np.arange(len(names)), rows)
        files = meta.get("files", {})
        for i, name in enumerate(names):
            db._entries[name] = {"arrays": {k: v[starts[key_group(k)][i]:starts[key_group(k)][i + 1]]
                                            for k, v in data.items()},
                                 "files": list(files.get(name, []))}
        if names:
            db._stacked = (data, owners)
        return db
