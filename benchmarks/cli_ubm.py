"""`spkrec train-ubm` through the CLI (the path users run) vs sklearn GaussianMixture on the same frames.

    python benchmarks/cli_ubm.py [--data DATA_DIR] [--num-gauss 128] [--num-iters 4] [--nj 1 2] [--repeats 3]

DATA_DIR needs feats.scp (and vad.scp); by default the features of data/so762-mini are computed once into
a temporary folder as recipes/mini does (20 MFCCs, energy VAD). The frames given to sklearn are loaded the
way train-ubm loads them (its FeatureLoader with the same default options: deltas, sliding CMVN, VAD),
as float64 (as benchmarks/gmm.py; float32 is printed too), same number of Gaussians.

Per repeat, in turn: `spkrec train-ubm --nj J` for each J (a fresh process: wall time from process start
to the model written, and seconds per EM iteration at the full size from its log/train_ubm.log), then
sklearn `GaussianMixture(covariance_type="diag")` per iteration (best time of max_iter=1+k minus best of
max_iter=1, divided by k, so neither its initialisation nor its final E-step counts; default threads;
its float32 runs slow down on denormal responsibilities, hence float64 is the reference). The ratios
are computed within each repeat, so a machine shared with other jobs moves both sides alike.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def spkrec_cmd():
    exe = os.path.join(os.path.dirname(sys.executable), "spkrec")
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", "spkrec.cli.main"]


def make_features(work):
    """so762-mini features as recipes/mini computes them (stage 0 and 1)."""
    data = os.path.join(work, "data")
    conf = os.path.join(ROOT, "recipes", "mini", "conf")
    for args in (["prepare-data", "so762", os.path.join(ROOT, "data", "so762-mini"), data],
                 ["compute-feats", "--feat-type", "mfcc", "--config", os.path.join(conf, "mfcc.conf"), "--nj", "2",
                  data, os.path.join(work, "mfcc")],
                 ["compute-vad", "--config", os.path.join(conf, "vad.conf"), data, os.path.join(work, "vad")]):
        subprocess.run(spkrec_cmd() + [args[0], "-q"] + args[1:], check=True)
    return data


def train_ubm_frames(data):
    """The frames train-ubm trains on: its own loader with its default feature options."""
    from argparse import Namespace

    from spkrec.cli.common import FEATURE_DEFAULTS, feature_loader, feature_options
    loader = feature_loader(data, feature_options(Namespace(**{k: None for k, _ in FEATURE_DEFAULTS})))
    return np.concatenate([loader(u) for u in loader.utt_ids])


def run_cli(data, out, num_gauss, num_iters, nj):
    """(wall seconds from process start to the model written, median seconds per full-size iteration)."""
    cmd = spkrec_cmd() + ["train-ubm", "-q", "--num-gauss", str(num_gauss), "--num-iters", str(num_iters),
                          "--nj", str(nj), data, out]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    assert os.path.exists(os.path.join(out, "final.ubm.npz"))
    secs = []
    with open(os.path.join(out, "log", "train_ubm.log")) as f:
        for line in f:
            m = re.match(rf"(split|final) {num_gauss} \d+ \S+ (\S+)$", line.strip())
            if m:
                secs.append(float(m.group(2)))
    return wall, float(np.median(secs)), len(secs)


def sklearn_per_iter(X, num_gauss, k=4, rounds=2):
    from sklearn.mixture import GaussianMixture
    rng = np.random.default_rng(0)
    X64 = X.astype(np.float64)
    means = X64[rng.choice(len(X), num_gauss, replace=False)]
    precisions = np.tile(1.0 / X64.var(0), (num_gauss, 1))
    weights = np.full(num_gauss, 1.0 / num_gauss)
    times = {}
    for _ in range(rounds):  # best of `rounds` for each length: the difference of two noisy times
        for iters in (1, 1 + k):
            gm = GaussianMixture(num_gauss, covariance_type="diag", init_params="random", weights_init=weights,
                                 means_init=means, precisions_init=precisions, max_iter=iters, tol=0.0,
                                 reg_covar=1e-6, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                gm.fit(X)
                times[iters] = min(times.get(iters, np.inf), time.perf_counter() - start)
    return (times[1 + k] - times[1]) / k


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None, help="data dir with feats.scp [vad.scp] (default: so762-mini)")
    p.add_argument("--num-gauss", type=int, default=128)
    p.add_argument("--num-iters", type=int, default=4, help="train-ubm --num-iters (EM iterations at full size)")
    p.add_argument("--nj", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--sklearn-iters", type=int, default=4)
    args = p.parse_args()

    with tempfile.TemporaryDirectory(prefix="spkrec-cli-ubm-") as work:
        data = args.data or make_features(work)
        X = train_ubm_frames(data)
        print(f"frames: {X.shape[0]} x {X.shape[1]} dims ({X.dtype}, as train-ubm loads them), "
              f"{args.num_gauss} Gaussians; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        rows = []
        for r in range(args.repeats):
            row = {}
            for nj in args.nj:
                row[nj] = run_cli(data, os.path.join(work, f"ubm_nj{nj}_{r}"), args.num_gauss, args.num_iters, nj)
            row["sk64"] = sklearn_per_iter(X.astype(np.float64), args.num_gauss, args.sklearn_iters)
            row["sk32"] = sklearn_per_iter(X.astype(np.float32), args.num_gauss, args.sklearn_iters)
            rows.append(row)
            cells = [f"--nj {nj}: {row[nj][0]:.2f} s wall, {row[nj][1] * 1e3:.1f} ms/iter" for nj in args.nj]
            ratios = [f"sklearn64/nj{nj} {row['sk64'] / row[nj][1]:.1f}x" for nj in args.nj]
            if len(args.nj) > 1:
                ratios.append(f"nj{args.nj[0]}/nj{args.nj[-1]} {row[args.nj[0]][1] / row[args.nj[-1]][1]:.2f}x")
            print(f"repeat {r + 1}: " + "; ".join(cells) + f"; sklearn {row['sk64'] * 1e3:.0f} ms/iter (float64), "
                  f"{row['sk32'] * 1e3:.0f} (float32) | " + ", ".join(ratios) + f" | load {os.getloadavg()[0]:.1f}")
        print("median over repeats:")
        for nj in args.nj:
            per_iter = np.median([row[nj][1] for row in rows])
            print(f"  spkrec train-ubm --nj {nj}: {np.median([row[nj][0] for row in rows]):.2f} s process start to "
                  f"model written, {per_iter * 1e3:.1f} ms per iteration at {args.num_gauss} Gaussians; "
                  f"sklearn float64 / this: {np.median([row['sk64'] / row[nj][1] for row in rows]):.1f}x, "
                  f"float32 / this: {np.median([row['sk32'] / row[nj][1] for row in rows]):.1f}x")
        if len(args.nj) > 1:
            a, b = args.nj[0], args.nj[-1]
            print(f"  --nj {a} / --nj {b} per iteration: {np.median([row[a][1] / row[b][1] for row in rows]):.2f}x")


if __name__ == "__main__":
    main()
