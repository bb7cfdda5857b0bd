"""i-vector speed: Baum-Welch statistics, extraction and T-matrix training on synthetic data.

    python benchmarks/ivector.py [--gauss 512 --dim 60 --tv-dim 400 --frames 300 --utts 4096 --nj 2]

Prints utterances/s and attained GFLOP/s beside a plain numpy matmul peak measured in the same run
(float32/float64, one thread and all threads). Counted FLOPs are the useful ones of each step:
statistics 2*T*C*(P+D+1) (full-covariance log-likelihoods, P = D(D+1)/2) + 2*T*C*(2D+1) (Gaussian
selection) + 2*T*C*D (first order); extraction C*R*(R+1) (precision product, lower triangles only) + 2*C*D*R (linear term)
+ 2*C*D^2 (whitening) + R^3/3 (Cholesky) + 2*R^2 (solves).
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from spkrec.ivector import FullGMM, IvectorExtractor, accumulate_stats
from spkrec.parallel import ParallelConfig, tune_allocator


def matmul_peak(dtype, threads, n=2048, reps=5):
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    b = a.T.copy()
    with threadpool_limits(limits=threads, user_api="blas"):
        a @ b
        best = np.inf
        for _ in range(reps):
            t = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best / 1e9


class SyntheticFrames:
    """Picklable loader: utterance i -> (frames, dim) float32 drawn from a fixed seed."""

    def __init__(self, frames, dim):
        self.frames, self.dim = frames, dim

    def __call__(self, i):
        return np.random.default_rng(i).standard_normal((self.frames, self.dim)).astype(np.float32)


def random_ubm(C, D, rng):
    A = rng.standard_normal((C, D, D)) * (0.3 / np.sqrt(D)) + np.eye(D)
    covs = A @ A.transpose(0, 2, 1)
    return FullGMM.from_params(rng.dirichlet(np.full(C, 10.0)), rng.standard_normal((C, D)) * 0.7, covs)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gauss", type=int, default=512)
    p.add_argument("--dim", type=int, default=60)
    p.add_argument("--tv-dim", type=int, default=400)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--utts", type=int, default=4096,
                   help="utterances for extraction (per-call costs such as each worker deriving G_c'G_c "
                        "once, ~0.2 s, are amortised as on a real corpus)")
    p.add_argument("--stats-utts", type=int, default=256)
    p.add_argument("--train-utts", type=int, default=512)
    p.add_argument("--nj", type=int, default=2)
    args = p.parse_args()
    tune_allocator()  # as the spkrec CLI does in its process (workers do it themselves)
    C, D, R, T = args.gauss, args.dim, args.tv_dim, args.frames
    rng = np.random.default_rng(0)

    peaks = {(dt.__name__, th): matmul_peak(dt, th) for dt in (np.float32, np.float64) for th in (1, args.nj)}
    print("numpy matmul peak (2048^3):  " + ", ".join(f"{k[0]} {k[1]} thread(s) {v:.0f} GFLOP/s"
                                                       for k, v in peaks.items()))
    peak32 = peaks[("float32", args.nj)]

    ubm = random_ubm(C, D, rng)
    loader = SyntheticFrames(T, D)
    P = D * (D + 1) // 2
    stats_flop = 2 * T * C * (P + D + 1) + 2 * T * C * (2 * D + 1) + 2 * T * C * D
    for nj in sorted({1, args.nj}):
        cfg = ParallelConfig(nj=nj)
        accumulate_stats(ubm, loader, list(range(4 * nj)), cfg)  # warm up workers
        t = time.perf_counter()
        N, F = accumulate_stats(ubm, loader, list(range(args.stats_utts)), cfg)
        dt = time.perf_counter() - t
        print(f"statistics (C={C}, D={D}, {T} frames/utt, full-cov posteriors, nj={nj}): "
              f"{args.stats_utts / dt:.0f} utts/s, {stats_flop * args.stats_utts / dt / 1e9:.0f} GFLOP/s")

    # statistics for extraction: realistic occupancies (sparse-ish N summing to T), F of matching scale
    n = args.utts
    N = (rng.dirichlet(np.full(C, 0.05), size=n) * T).astype(np.float32)
    F = (rng.standard_normal((n, C, D)) * np.sqrt(N)[:, :, None]).astype(np.float32)
    ex = IvectorExtractor(n_components=R, prior_offset=100.0)
    ex.covariances_ = ubm.covariances_
    ex.T_ = rng.standard_normal((C, D, R)) * (0.5 / np.sqrt(R))
    ex.prior_offset_ = 100.0
    ext_flop = C * R * (R + 1) + 2 * C * D * R + 2 * C * D * D + R ** 3 / 3 + 2 * R * R
    ref = ex.transform(N[:64], F[:64], dtype=np.float64)
    for nj in sorted({1, args.nj}):
        cfg = ParallelConfig(nj=nj)
        ex.set_params(parallel=cfg).transform(N[:64 * nj], F[:64 * nj])  # warm up
        t = time.perf_counter()
        iv = ex.transform(N, F)
        dt = time.perf_counter() - t
        gf = ext_flop * n / dt / 1e9
        print(f"extraction (C={C}, D={D}, R={R}, float32 products, nj={nj}): {n / dt:.0f} utts/s, "
              f"{gf:.0f} GFLOP/s = {100 * gf / peak32:.0f} % of the {args.nj}-thread float32 matmul peak")
    err = (np.linalg.norm(iv[:64] - ref, axis=1) / np.linalg.norm(ref, axis=1)).max()
    print(f"extraction in float32 vs float64: largest relative difference of an i-vector {err:.1e}")

    m = args.train_utts
    tr = IvectorExtractor(n_components=R, n_iter=2, prior_offset=100.0)
    t = time.perf_counter()
    tr.fit(N[:m], F[:m], ubm, config=ParallelConfig(nj=args.nj))
    dt = (time.perf_counter() - t) / 2
    print(f"T-matrix training ({m} utts, C={C}, D={D}, R={R}, float64, nj={args.nj}): {dt:.1f} s per iteration "
          f"({m / dt:.0f} utts/s)")


if __name__ == "__main__":
    main()
