"""The i-vector posterior kernels: projections, per-utterance posteriors (precision, mean), E-step and
extraction chunks. Separate from :mod:`spkrec.ivector.extractor` (the estimator) so that the parallel
workers, which import only this module, skip the scikit-learn import.

See :mod:`spkrec.ivector.extractor` for the maths (whitened ``G_c``, packed lower triangles).
"""
import numpy as np
from scipy.linalg import blas, lapack
from threadpoolctl import threadpool_limits

from spkrec.errors import SpkrecError
from spkrec.parallel import SERIAL, SharedArrays

MAX_CHUNKS = 16
"""Chunks of batches per call (fixed, so sums do not depend on ``nj``): each chunk ships the
projection to a worker, which derives ``G_c' G_c`` once per process (see ``_Projection``)."""
TRAIN_UTTS_PER_CHUNK = 512
"""E-step chunks hold at least this many utterances (when there are enough): each returns a
(C, R(R+1)/2) float64 accumulator, whose transfer must stay small beside the chunk's work."""


class _Projection:
    """Whitened T for the workers: sent once per worker process (``SharedArrays``), with its derived
    products computed once per worker process."""

    def __init__(self, G, whiten, dtype, config=SERIAL):
        self.dtype = np.dtype(dtype)
        # G (C, D, R) whitened T; whiten (C, D, D) Sigma_c^-1/2 (inverse Cholesky factor) or (C, D) 1/sigma
        self.shared = SharedArrays(dict(G=np.asarray(G, self.dtype), whiten=whiten), config)

    @property
    def G(self):
        return self.shared["G"]

    @property
    def whiten(self):
        return self.shared["whiten"]

    @property
    def GG(self):
        """(C, R(R+1)/2) lower triangles of G_c' G_c (row-major packing) in ``dtype``."""
        def compute():
            C, _, R = self.G.shape
            GG = np.empty((C, R * (R + 1) // 2), self.dtype)
            for s in range(0, C, 64):  # blocks of Gaussians bound the (block, R, R) temporary
                Gt = np.asarray(self.G[s:s + 64])
                _pack_lower(_stack_matmul(Gt.transpose(0, 2, 1), Gt), GG[s:s + 64])
            return GG
        return self.shared.cached(f"GG-{self.dtype}", compute)

    @property
    def U_flat(self):
        """(C*D, R) stacked ``Sigma_c^-1 T_c = W_c' G_c`` in ``dtype``: the linear term is ``F_flat @ U_flat``."""
        def compute():
            C, D, R = self.G.shape
            G, whiten = np.asarray(self.G), np.asarray(self.whiten)
            if whiten.ndim == 2:
                U = G * whiten[:, :, None]
            else:
                U = _stack_matmul(whiten.transpose(0, 2, 1), G.astype(np.float64))
            return np.ascontiguousarray(U.reshape(C * D, R), dtype=self.dtype)
        return self.shared.cached(f"U-{self.dtype}", compute)


def _posteriors(Nb, Fb, proj, mu0, want_inverse, work=None):
    """Posterior means (B, R) float64, log-det of the precisions (B,), linear terms b (B, R) and, if
    asked, a (B, R, R) array whose lower triangles hold the inverse precisions (covariances).

    Precisions are formed, factorised (LAPACK Cholesky, in place) and solved in ``proj.dtype``;
    ``work`` is an optional (>= B, R, R) buffer of that dtype, reused across batches (a fresh 40-80 MB
    array per batch costs ~10 % in page faults)."""
    B = len(Nb)
    R = proj.G.shape[2]
    dtype = proj.dtype
    packed = np.asarray(Nb, dtype) @ proj.GG  # ONE product: all precisions of the batch (lower halves)
    b = (np.asarray(Fb, dtype).reshape(B, -1) @ proj.U_flat).astype(np.float64) + mu0
    L = work[:B] if work is not None else np.empty((B, R, R), dtype)
    starts = _row_starts(R)
    for r in range(R):  # unpack row by row: contiguous copies (a fancy-index scatter is ~4x slower)
        L[:, r, :r + 1] = packed[:, starts[r]:starts[r + 1]]
    diag = np.arange(R)
    L[:, diag, diag] += 1.0
    potrf, potrs, potri = lapack.get_lapack_funcs(("potrf", "potrs", "potri"), dtype=dtype)
    means = np.empty((B, R))
    logdet = np.empty(B)
    for i in range(B):  # per utterance: LAPACK Cholesky in place in L
        Li = L[i].T  # Fortran-ordered view whose upper triangle holds the data: no copy
        c, info = potrf(Li, lower=0, clean=0, overwrite_a=1)
        if info != 0:
            raise SpkrecError(f"i-vector precision matrix not positive definite (LAPACK info {info}); "
                              "the statistics or the extractor contain NaN/inf values")
        logdet[i] = 2.0 * np.log(np.diagonal(c).astype(np.float64)).sum()
        means[i], _ = potrs(c, b[i].astype(dtype), lower=0)
        if want_inverse:
            potri(c, lower=0, overwrite_c=1)  # in place: lower triangle of L[i] = covariance
    return means, logdet, b, (L if want_inverse else None)


def _row_starts(R):
    return np.concatenate([[0], np.cumsum(np.arange(1, R + 1))])


def _pack_lower(M, out, v=None):
    """Lower triangles of the stack M (B, R, R) (plus the outer products v v' of v (B, R), if given)
    into out (B, R(R+1)/2), row by row (contiguous copies)."""
    R = M.shape[1]
    starts = _row_starts(R)
    for r in range(R):
        if v is None:
            out[:, starts[r]:starts[r + 1]] = M[:, r, :r + 1]
        else:
            np.multiply(v[:, r:r + 1], v[:, :r + 1], out=out[:, starts[r]:starts[r + 1]])
            out[:, starts[r]:starts[r + 1]] += M[:, r, :r + 1]
    return out


def _estep_chunk(batches, proj, mu0, tril, source=None, keep=None, accumulate=True):
    """EM accumulators of a list of (N, F) batches, or of batch descriptors of the StatsArchive ``source``
    (whose files are then read here, one at a time); one BLAS thread: parallelism comes from ``nj``.
    ``keep``: indices of the Gaussians of the model (columns of the statistics); ``accumulate=False``:
    only the objective, count and occupancies."""
    if source is not None:
        batches = source.reader(batches)
    with threadpool_limits(limits=1, user_api="blas"):
        return _estep(batches, proj, mu0, tril, keep, accumulate)


ACC_UTTS = 256
"""Utterances whose E[w], E[ww'] are buffered before the accumulator products: the (C, R(R+1)/2)
accumulator is read and written once per buffer, so the products are compute-bound, not memory-bound."""


def _estep(batches, proj, mu0, tril, keep=None, accumulate=True):
    C, D, R = proj.G.shape
    if not accumulate:
        acc = dict(objective=0.0, count=0, N=np.zeros(C))
        for Nb, Fb in batches:
            if keep is not None:
                Nb, Fb = Nb[:, keep], Fb[:, keep]
            means, logdet, b, _ = _posteriors(Nb, Fb, proj, mu0, want_inverse=False)
            acc["objective"] += float((0.5 * (b * means).sum(1) - 0.5 * logdet).sum() - 0.5 * len(means) * (mu0 @ mu0))
            acc["count"] += len(means)
            acc["N"] += np.asarray(Nb, np.float64).sum(0)
        return acc
    P = len(tril[0])
    # Fortran order: BLAS dgemm accumulates into them in place (beta=1)
    acc = dict(Cacc=np.zeros((C * D, R), order="F"), A=np.zeros((C, P), order="F"), sum_mean=np.zeros(R),
               sum_eww=np.zeros(P), objective=0.0, count=0, N=np.zeros(C))
    num_utts = getattr(batches, "num_utts", None)  # a lazy archive reader knows it without reading
    size = min(ACC_UTTS, num_utts if num_utts is not None else sum(len(b[0]) for b in batches))
    bufN, bufF = np.empty((size, C)), np.empty((size, C * D))
    bufM, bufE = np.empty((size, R)), np.empty((size, P))
    fill = 0

    def flush(k):
        acc["Cacc"] = blas.dgemm(1.0, bufF[:k].T, bufM[:k].T, beta=1.0, c=acc["Cacc"], trans_b=1, overwrite_c=1)
        acc["A"] = blas.dgemm(1.0, bufN[:k].T, bufE[:k].T, beta=1.0, c=acc["A"], trans_b=1, overwrite_c=1)

    work = None
    for Nb, Fb in batches:
        if keep is not None:
            Nb, Fb = Nb[:, keep], Fb[:, keep]
        work = _work_buffer(work, len(Nb), proj)
        means, logdet, b, inv = _posteriors(Nb, Fb, proj, mu0, want_inverse=True, work=work)
        for s in range(0, len(means), size):  # a batch larger than the buffer is split
            B = min(len(means) - s, size)
            if fill + B > size:
                flush(fill)
                fill = 0
            sl = slice(fill, fill + B)
            m = means[s:s + B]
            bufN[sl] = Nb[s:s + B]
            bufF[sl] = np.asarray(Fb[s:s + B], np.float64).reshape(B, -1)  # raw F: whitened once per iteration
            bufM[sl] = m
            _pack_lower(inv[s:s + B], bufE[sl], m)  # packed lower E[ww'] = L^-1 + E[w]E[w]'
            acc["sum_eww"] += bufE[sl].sum(0)
            fill += B
        acc["sum_mean"] += means.sum(0)
        acc["objective"] += float((0.5 * (b * means).sum(1) - 0.5 * logdet).sum() - 0.5 * len(means) * (mu0 @ mu0))
        acc["count"] += len(means)
        acc["N"] += np.asarray(Nb, np.float64).sum(0)
    if fill:
        flush(fill)
    return acc


def _extract_chunk(batches, proj, mu0, want_cov, source=None):
    with threadpool_limits(limits=1, user_api="blas"):
        return extract_batches(batches if source is None else source.reader(batches), proj, mu0, want_cov)


class _SharedStats:
    """In-memory statistics ``N (n, C)``, ``F (n, C, D)`` as a batch source for the workers: the arrays
    travel once (``SharedArrays``: memory-mapped files for local workers) and each chunk only names
    its batches as ``(start, stop)`` row ranges (joblib would otherwise hash and copy every chunk's
    slice of F in the driver, a tenth of the run time of an extraction on 2 cores)."""

    def __init__(self, N, F, config):
        self.shared = SharedArrays(dict(N=N, F=F), config)
        self.num_utts = len(N)

    def __len__(self):
        return self.num_utts

    def batches(self, batch_size):
        bs = max(1, int(batch_size))
        return [(i, min(i + bs, self.num_utts)) for i in range(0, self.num_utts, bs)]

    def reader(self, ranges):
        N, F = self.shared["N"], self.shared["F"]
        return [(N[a:b], F[a:b]) for a, b in ranges]


def _work_buffer(work, size, proj):
    """A (>= size, R, R) buffer of ``proj.dtype`` for the precisions of a batch: ``work`` when it is big
    enough (one buffer serves all batches of a chunk), else a new one."""
    if work is None or len(work) < size:
        work = np.empty((size,) + (proj.G.shape[2],) * 2, proj.dtype)
    return work


def extract_batches(batches, proj, mu0, want_cov):
    out = []
    work = None
    for Nb, Fb in batches:
        work = _work_buffer(work, len(Nb), proj)
        means, _, _, inv = _posteriors(Nb, Fb, proj, mu0, want_inverse=want_cov, work=work)
        if want_cov:
            inv = np.tril(inv) + np.tril(inv, -1).transpose(0, 2, 1)  # lower triangles hold the covariances
            out.append(((means - mu0).astype(np.float32), inv.astype(np.float32)))
        else:
            out.append(((means - mu0).astype(np.float32), None))
    return out


def _stack_matmul(a, b):
    """Stacked small products (per Gaussian): single-threaded, BLAS threads only add overhead here."""
    with threadpool_limits(limits=1, user_api="blas"):
        return np.matmul(a, b)
