"""Baum-Welch statistics speed, this tree against another checkout (e.g. the main branch), back to back.

    python benchmarks/stats.py --other CHECKOUT [--gauss 512 --dim 60 --frames 300 --utts 256]
                               [--nj 1 2] [--repeats 3]

Each round runs the statistics of the same synthetic utterances (full-covariance UBM, Kaldi's options:
20 Gaussians selected, min_post 0.025) in a fresh process for each checkout in turn (so both see the
same machine load), and prints utterances/s, the ratio (median over rounds) and the largest
difference of the statistics between the two checkouts (relative to the largest |F|, and of N).
"""
import argparse
import os
import statistics
import tempfile

from checkouts import HERE, add_other_argument, run_child

CHILD = r"""
import json, sys, time
import numpy as np
from ivector import SyntheticFrames, random_ubm
from spkrec.ivector import accumulate_stats
from spkrec.parallel import ParallelConfig, tune_allocator
C, D, T, n, nj = map(int, sys.argv[1:6])
out = sys.argv[6]
tune_allocator()
ubm = random_ubm(C, D, np.random.default_rng(0))
loader = SyntheticFrames(T, D)
cfg = ParallelConfig(nj=nj)
accumulate_stats(ubm, loader, list(range(16 * nj)), cfg)  # warm up (workers started)
t = time.perf_counter()
N, F = accumulate_stats(ubm, loader, list(range(n)), cfg)
dt = time.perf_counter() - t
np.savez(out, N=N[:64], F=F[:64])
print(json.dumps(dict(utts_per_s=n / dt)))
"""


def run(tree, args, nj, out):
    return run_child(tree, CHILD, args.gauss, args.dim, args.frames, args.utts, nj, out)["utts_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_other_argument(p)
    p.add_argument("--gauss", type=int, default=512)
    p.add_argument("--dim", type=int, default=60)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--utts", type=int, default=256)
    p.add_argument("--nj", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import numpy as np
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        for nj in args.nj:
            ours, theirs = [], []
            for r in range(args.repeats):
                theirs.append(run(args.other, args, nj, os.path.join(tmp, "other.npz")))
                ours.append(run(HERE, args, nj, os.path.join(tmp, "ours.npz")))
            a, b = np.load(os.path.join(tmp, "ours.npz")), np.load(os.path.join(tmp, "other.npz"))
            dF = np.abs(a["F"] - b["F"]).max() / np.abs(b["F"]).max()
            dN = np.abs(a["N"] - b["N"]).max()
            ratios = [o / t for o, t in zip(ours, theirs)]
            print(f"nj={nj}: this tree {statistics.median(ours):.0f} utts/s ({min(ours):.0f}-{max(ours):.0f}), "
                  f"other {statistics.median(theirs):.0f} ({min(theirs):.0f}-{max(theirs):.0f}); "
                  f"ratio {statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f}); "
                  f"max |dF|/max|F| {dF:.1e}, max |dN| {dN:.1e}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
