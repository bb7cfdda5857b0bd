"""GMM-UBM top-C trial scoring speed (means-only MAP models), this tree against another checkout, back to back.

    python benchmarks/gmm_scoring.py --other CHECKOUT [--gauss 256 --dim 60 --models 125 --tests 40
                                      --frames 300 --top-c 5 --repeats 3]

Each round scores every test utterance against every model (``score_trials``, one process, serial) in a
fresh process per checkout, in turn; prints trials/s, the median ratio and the largest score difference.
"""
import argparse
import os
import statistics
import tempfile

from checkouts import HERE, add_other_argument, run_child

CHILD = r"""
import json, sys, time
import numpy as np
from spkrec.gmm import DiagGMM, SpeakerGMMs, score_trials
C, D, S, n, T, k = map(int, sys.argv[1:7])
rng = np.random.default_rng(0)
ubm = DiagGMM.from_params(rng.dirichlet(np.full(C, 5.0)), rng.standard_normal((C, D)), rng.uniform(0.5, 2.0, (C, D)))
models = SpeakerGMMs([f"s{i}" for i in range(S)], ubm.means_ + 0.1 * rng.standard_normal((S, C, D)))
tests = {f"t{i}": rng.standard_normal((T, D)).astype(np.float32) for i in range(n)}
trials = [(s, t) for t in tests for s in models.ids]
score_trials(ubm, models, tests.__getitem__, trials[:S], top_c=k)  # warm up
t = time.perf_counter()
scores = score_trials(ubm, models, tests.__getitem__, trials, top_c=k)
dt = time.perf_counter() - t
np.save(sys.argv[7], scores)
print(json.dumps(dict(trials_per_s=len(trials) / dt)))
"""


def run(tree, args, out):
    return run_child(tree, CHILD, args.gauss, args.dim, args.models, args.tests, args.frames, args.top_c, out,
                     OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")["trials_per_s"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_other_argument(p)
    p.add_argument("--gauss", type=int, default=256)
    p.add_argument("--dim", type=int, default=60)
    p.add_argument("--models", type=int, default=125)
    p.add_argument("--tests", type=int, default=40)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--top-c", type=int, default=5)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    import numpy as np
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            theirs.append(run(args.other, args, os.path.join(tmp, "other.npy")))
            ours.append(run(HERE, args, os.path.join(tmp, "ours.npy")))
        d = np.abs(np.load(os.path.join(tmp, "ours.npy")) - np.load(os.path.join(tmp, "other.npy"))).max()
    ratios = [o / t for o, t in zip(ours, theirs)]
    print(f"this tree {statistics.median(ours):.0f} trials/s ({min(ours):.0f}-{max(ours):.0f}), other "
          f"{statistics.median(theirs):.0f} ({min(theirs):.0f}-{max(theirs):.0f}): ratio {statistics.median(ratios):.2f}x "
          f"({min(ratios):.2f}-{max(ratios):.2f}); largest score difference {d:.1e}")
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
