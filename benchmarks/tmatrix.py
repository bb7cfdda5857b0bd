"""T-matrix training speed per whole EM iteration (E-step, M-step, minimum divergence), this tree
against another checkout (e.g. the main branch), at 1 and 2 workers, back to back.

    python benchmarks/tmatrix.py [--other CHECKOUT] [--gauss 512 --dim 60 --tv-dim 400 --utts 512]
                                 [--iters 2] [--repeats 2]

Each run is a fresh process (``IvectorExtractor.fit`` on synthetic statistics, float64, prior offset
100, minimum divergence), checkouts in turn so both see the same machine load. Prints seconds per
iteration (median over repeats), the speed-up from 1 to 2 workers and its efficiency (speed-up / 2),
and whether this tree's T matrices at 1 and 2 workers are identical.
"""
import argparse
import os
import statistics
import tempfile

from checkouts import HERE, add_other_argument, run_child

CHILD = r"""
import json, sys, time
import numpy as np
from spkrec.ivector import IvectorExtractor
from spkrec.parallel import ParallelConfig, tune_allocator
from ivector import random_ubm
C, D, R, n, iters, nj, out = map(int, sys.argv[1:8])
tune_allocator()
rng = np.random.default_rng(0)
ubm = random_ubm(C, D, rng)
N = (rng.dirichlet(np.full(C, 0.05), size=n) * 300).astype(np.float32)
F = (rng.standard_normal((n, C, D)) * np.sqrt(N)[:, :, None]).astype(np.float32)
cfg = ParallelConfig(nj=nj)
IvectorExtractor(n_components=8, n_iter=1, parallel=cfg).fit(N[:64], F[:64], ubm)  # start the workers
t = time.perf_counter()
ex = IvectorExtractor(n_components=R, n_iter=iters, parallel=cfg).fit(N, F, ubm)
dt = (time.perf_counter() - t) / iters
np.save(sys.argv[8], ex.T_)
print(json.dumps(dict(s_per_iter=dt)))
"""


def run(tree, args, nj, out):
    return run_child(tree, CHILD, args.gauss, args.dim, args.tv_dim, args.utts, args.iters, nj, 0, out)["s_per_iter"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_other_argument(p, required=False)
    p.add_argument("--gauss", type=int, default=512)
    p.add_argument("--dim", type=int, default=60)
    p.add_argument("--tv-dim", type=int, default=400)
    p.add_argument("--utts", type=int, default=512)
    p.add_argument("--iters", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    import numpy as np
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    trees = [("this tree", HERE)] + ([("other", args.other)] if args.other else [])
    times = {(name, nj): [] for name, _ in trees for nj in (1, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for nj in (1, 2):
                for name, tree in trees[::-1]:
                    times[name, nj].append(run(tree, args, nj, os.path.join(tmp, f"{name}-{nj}.npy")))
        same = np.array_equal(np.load(os.path.join(tmp, "this tree-1.npy")), np.load(os.path.join(tmp, "this tree-2.npy")))
        if args.other:
            d = np.abs(np.load(os.path.join(tmp, "this tree-1.npy")) - np.load(os.path.join(tmp, "other-1.npy"))).max()
    for name, _ in trees:
        t1, t2 = statistics.median(times[name, 1]), statistics.median(times[name, 2])
        print(f"{name}: {t1:.2f} s/iteration at nj=1 ({min(times[name, 1]):.2f}-{max(times[name, 1]):.2f}), "
              f"{t2:.2f} at nj=2 ({min(times[name, 2]):.2f}-{max(times[name, 2]):.2f}): speed-up {t1 / t2:.2f}x, "
              f"efficiency {50 * t1 / t2:.0f} %")
    print(f"this tree: T at nj=1 and nj=2 identical: {same}")
    if args.other:
        print(f"largest |T difference| between the trees: {d:.1e}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
