"""Baum-Welch statistics on disk: chunk files written by the workers, read back one file at a time.

``write_stats`` computes the statistics of a corpus (optionally pooled per speaker) and each worker
writes its rows to ``OUT/stats.<k>.npz`` (``N (n_k, C)``, ``F (n_k, C, D)`` float32, row ids; atomic,
no pickle), returning only paths. :class:`StatsArchive` is the sequence of those files: training
(``IvectorExtractor.fit``) cuts it into the same batches as the in-memory arrays and its E-step workers
open the files by path, so no process ever holds the statistics of the whole corpus.
With ``second_order=True`` the total second-order statistics S of the corpus (one (C, D, D) or (C, D)
float64 array, summed per file by the workers, then over the files in order: the same for any ``nj``)
go to ``OUT/second_order.npz``, read by :meth:`StatsArchive.second_order` (residual-covariance update).
"""
import glob
import os
import re

import numpy as np
from threadpoolctl import threadpool_limits

from spkrec.errors import SpkrecError
from spkrec.io.atomic import load_npz, read_npz_header, save_npz
from spkrec.io.frames import frame_source
from spkrec.ivector.stats import StatsComputer, pool_stats, stats_of
from spkrec.parallel import NUM_CHUNKS, SERIAL, map_chunks

KIND = "IvectorStats"
SECOND_ORDER_KIND = "IvectorSecondOrderStats"
SECOND_ORDER_FILE = "second_order.npz"
FILE_BYTES = 256 << 20
"""Upper bound on the size of one statistics file (it is loaded whole by a worker)."""


def _read(path, names=()):
    """``(meta, [arrays named names])`` of a statistics file; SpkrecError when missing or unreadable."""
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: statistics file not found; re-run the stage that writes it")
    try:
        with np.load(path, allow_pickle=False) as z:
            header = read_npz_header(path, {"__header__": z["__header__"]} if "__header__" in z.files else {})
            arrays = [z[n] for n in names]
    except Exception as exc:  # zipfile.BadZipFile, KeyError, ValueError, OSError ...
        raise SpkrecError(f"{path}: not a readable statistics file ({exc}); delete it and re-run its stage") from None
    if header.get("kind") != KIND:
        raise SpkrecError(f"{path}: holds a {header.get('kind')!r}, not i-vector statistics; pass a stats dir")
    return header.get("meta", {}), arrays


class StatsArchive:
    """Statistics ``N (n, C)``, centred ``F (n, C, D)`` float32 stored in chunk files, rows in file order.

    Only the file headers are read here; :meth:`load` reads one file. Small and picklable: it is what
    the E-step workers receive (with batch descriptors), instead of the statistics.
    """

    def __init__(self, paths, second_order_path=None):
        self.paths = [os.fspath(p) for p in paths]
        self.second_order_path = None if second_order_path is None else os.fspath(second_order_path)
        metas = [_read(p)[0] for p in self.paths]
        self.counts = [int(m["num_rows"]) for m in metas]
        shapes = {(int(m["num_gauss"]), int(m["dim"])) for m in metas}
        if len(shapes) > 1:
            raise SpkrecError(f"{os.path.dirname(self.paths[0])}: statistics files of different UBMs {sorted(shapes)}; "
                              "delete the directory and re-run the stage")
        self.num_gauss, self.dim = shapes.pop() if shapes else (0, 0)

    @classmethod
    def from_dir(cls, directory):
        """The archive of ``directory/stats.<k>.npz`` in the order of ``k``."""
        paths = glob.glob(os.path.join(directory, "stats.*.npz"))
        paths = [p for p in paths if re.fullmatch(r"stats\.\d+\.npz", os.path.basename(p))]
        if not paths:
            raise SpkrecError(f"{directory}: no stats.<k>.npz files; run the statistics stage first")
        so = os.path.join(directory, SECOND_ORDER_FILE)
        return cls(sorted(paths, key=lambda p: int(os.path.basename(p).split(".")[1])),
                   so if os.path.exists(so) else None)

    def second_order(self):
        """Total second-order statistics S (C, D, D) or (C, D) float64 of all rows (``write_stats(...,
        second_order=True)``); SpkrecError when they were not written."""
        if self.second_order_path is None:
            where = os.path.dirname(self.paths[0]) if self.paths else "the statistics"
            raise SpkrecError(f"{where}: no {SECOND_ORDER_FILE} (second-order statistics); write the statistics "
                              "with second_order=True to re-estimate the variances")
        arrays, _ = load_npz(self.second_order_path, SECOND_ORDER_KIND)
        return arrays["S"]

    @property
    def num_utts(self):
        """Number of rows (utterances, or speakers for pooled statistics)."""
        return sum(self.counts)

    def __len__(self):
        return self.num_utts

    def load(self, k):
        """``(N (n_k, C), F (n_k, C, D), ids (n_k,))`` of file ``k``."""
        meta, (N, F, ids) = _read(self.paths[k], ("N", "F", "ids"))
        if N.shape != (self.counts[k], self.num_gauss) or F.shape != (self.counts[k], self.num_gauss, self.dim):
            raise SpkrecError(f"{self.paths[k]}: arrays N {N.shape}, F {F.shape} disagree with the header; "
                              "delete it and re-run its stage")
        return N, F, ids

    def ids(self):
        """Row ids of all files, in order."""
        return [str(u) for k in range(len(self.paths)) for u in _read(self.paths[k], ("ids",))[1][0]]

    def batches(self, batch_size):
        """Descriptors of the batches of ``batch_size`` consecutive rows from the start (the batches of
        the concatenated arrays): each is a tuple of ``(file, start, stop)`` pieces."""
        bs = max(1, int(batch_size))
        out, current, fill = [], [], 0
        for k, n in enumerate(self.counts):
            start = 0
            while start < n:
                take = min(n - start, bs - fill)
                current.append((k, start, start + take))
                start += take
                fill += take
                if fill == bs:
                    out.append(tuple(current))
                    current, fill = [], 0
        if current:
            out.append(tuple(current))
        return out

    def reader(self, descriptors):
        """Lazy iterable of the ``(N, F)`` batches of ``descriptors`` (consecutive ones read each file once)."""
        return _Reader(self, descriptors)

    def iter_batches(self, batch_size):
        """Iterate over ``(N (B, C), F (B, C, D))`` batches, holding one file at a time."""
        return iter(self.reader(self.batches(batch_size)))


class _Reader:
    def __init__(self, archive, descriptors):
        self.archive, self.descriptors = archive, list(descriptors)
        self.num_utts = sum(b - a for d in self.descriptors for _, a, b in d)

    def __iter__(self):
        loaded, arrays = None, None
        for pieces in self.descriptors:
            parts = []
            for k, a, b in pieces:
                if k != loaded:
                    arrays, loaded = None, None  # drop the previous file before reading the next
                    arrays, loaded = self.archive.load(k)[:2], k
                parts.append((arrays[0][a:b], arrays[1][a:b]))
            if len(parts) == 1:
                yield parts[0]
            else:
                yield np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


# ---------------------------------------------------------------------------------------------- writing
def rows_per_file(num_rows, num_gauss, dim, batch_size=64):
    """Rows per statistics file: enough files for :data:`NUM_CHUNKS` workers, each under
    :data:`FILE_BYTES`, in whole batches. Depends on the sizes only (never on ``nj``)."""
    bs = max(1, int(batch_size))
    cap = max(1, FILE_BYTES // (4 * num_gauss * (dim + 1)))
    per = min(cap, -(-max(1, num_rows) // NUM_CHUNKS))
    return max(bs, -(-per // bs) * bs)


def _write_jobs(jobs, loader, computer, out_dir, pooled, second_order=False):
    """Worker: statistics of each job ``(k, [(row id, [utts])])``, written to ``out_dir/stats.<k>.npz``;
    returns the paths (with ``second_order``: pairs (path, summed S of the job))."""
    paths = []
    with threadpool_limits(limits=1, user_api="blas"):  # per-utterance products are small
        for k, groups in jobs:
            utts = [u for _, members in groups for u in members]
            N, F, *S = stats_of(utts, loader, computer, second_order)
            if pooled:
                ids, N, F = pool_stats(N, F, utts, dict(groups))
            else:
                ids = utts
            path = os.path.join(out_dir, f"stats.{k}.npz")
            save_npz(path, KIND, dict(N=N, F=F, ids=np.array(ids, dtype=str)),
                     dict(num_rows=len(ids), num_gauss=computer.num_gauss, dim=computer.dim, pooled=pooled))
            paths.append((path, S[0]) if second_order else path)
    return paths


def write_stats(ubm, loader, utt_ids, out_dir, config=SERIAL, groups=None, batch_size=64, num_gselect=20,
                min_post=0.025, posterior_scale=1.0, second_order=False):
    """Compute statistics and write them to ``out_dir/stats.<k>.npz`` (by the workers); returns a StatsArchive.

    ubm, loader, utt_ids, num_gselect, min_post, posterior_scale : as for ``accumulate_stats``.
    groups : optional mapping ``group -> [utts]`` (e.g. spk2utt): rows are then the sums over each group
        (the numbers of ``pool_stats``; utterances not in ``utt_ids`` are ignored, empty groups skipped).
    batch_size : files hold whole batches of this many rows where possible (fewer pieces per batch).
    second_order : also write the total second-order statistics to ``out_dir/second_order.npz``.
    Older ``stats.*.npz`` (and ``second_order.npz``) files in ``out_dir`` are removed first.
    """
    computer = StatsComputer(ubm, num_gselect, min_post, posterior_scale, config)
    loader, utt_ids = frame_source(loader, utt_ids)
    if groups is None:
        rows = [(u, [u]) for u in utt_ids]
    else:
        known = set(utt_ids)
        rows = [(g, [u for u in members if u in known]) for g, members in groups.items()]
        rows = [(g, members) for g, members in rows if members]
    per_file = rows_per_file(len(utt_ids), computer.num_gauss, computer.dim, batch_size)
    jobs, current, size = [], [], 0
    for row in rows:  # consecutive rows, about per_file utterances per file (whole groups)
        current.append(row)
        size += len(row[1])
        if (len(current) if groups is None else size) >= per_file:
            jobs.append((len(jobs) + 1, current))
            current, size = [], 0
    if current:
        jobs.append((len(jobs) + 1, current))
    os.makedirs(out_dir, exist_ok=True)
    for old in glob.glob(os.path.join(out_dir, "stats.*.npz")) + glob.glob(os.path.join(out_dir, SECOND_ORDER_FILE)):
        os.remove(old)
    parts = map_chunks(_write_jobs, jobs, config, desc="Baum-Welch statistics", loader=loader, computer=computer,
                       out_dir=os.fspath(out_dir), pooled=groups is not None, second_order=bool(second_order))
    results = [p for part in parts for p in part]
    if not second_order:
        return StatsArchive(results)
    S = np.zeros((computer.num_gauss,) + (computer.dim,) * (2 if computer.full else 1))
    for _, Sk in results:  # in file order: the same sum for any nj
        S += Sk
    so_path = os.path.join(out_dir, SECOND_ORDER_FILE)
    save_npz(so_path, SECOND_ORDER_KIND, dict(S=S), dict(num_gauss=computer.num_gauss, dim=computer.dim))
    return StatsArchive([p for p, _ in results], so_path)
