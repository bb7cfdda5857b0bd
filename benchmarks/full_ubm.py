"""Full-covariance UBM E-step: CPU seconds per EM iteration, all Gaussians (the former path) vs the
selected (frame, Gaussian) pairs only (``FullGMM``'s path), on the same frames, one BLAS thread.

    python benchmarks/full_ubm.py [--frames 60000] [--dim 39] [--num-gauss 128] [--num-gselect 20] [--repeats 3]

Frames are drawn from a random full-covariance mixture in 300-frame utterances; the diagonal UBM that
selects is its diagonal. The former path computes full-covariance log-likelihoods of every Gaussian
for every frame (one product of packed quadratic features), masks them to the selection and
accumulates dense statistics; both give the same statistics (printed: largest relative difference).
CPU time (``time.process_time``), best of the repeats: the machine may be shared.
"""
import argparse
import os
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spkrec.gmm.core import (Quadratic, as_frames, diag_coefficients, diag_loglik, full_coefficients,  # noqa: E402
                             full_factors, full_loglik, masked_to_selection, posteriors, top_k)
from spkrec.ivector import full_ubm  # noqa: E402


def all_gaussian_stats(utts, loader, weights, means, covs, gsel):
    """The former E-step: every Gaussian's full-covariance log-likelihood, masked to the selection."""
    W, center, quad = full_coefficients(weights, means, covs)
    C, D = means.shape
    N, F, S = np.zeros(C), np.zeros((C, D)), np.zeros((C, quad.iu[0].size))
    c32 = center.astype(np.float32)
    for utt in utts:
        Xc = as_frames(loader(utt), D) - c32
        sel = top_k(diag_loglik(Xc + c32, gsel[0]), gsel[1])
        Q = quad.features(Xc)
        post, _ = posteriors(masked_to_selection(full_loglik(Q, Xc, W), sel))
        N += post.sum(0, dtype=np.float64)
        F += post.T @ Xc
        S += post.T @ Q
    return N, F, Quadratic(D).unpack(S, D)


def selected_stats(utts, loader, weights, means, covs, gsel):
    center = weights @ means
    factor, const = full_factors(weights, means, covs)
    acc = full_ubm._full_stats(utts, loader, (factor, const, (means - center).astype(np.float32), center), gsel)
    return acc["N"], acc["F"], acc["S"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=60000)
    ap.add_argument("--dim", type=int, default=39)
    ap.add_argument("--num-gauss", type=int, default=128)
    ap.add_argument("--num-gselect", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    C, D = args.num_gauss, args.dim
    weights = np.full(C, 1.0 / C)
    means = rng.normal(size=(C, D)) * 2.0
    A = rng.normal(size=(C, D, D)) * (0.3 / np.sqrt(D)) + np.eye(D)
    covs = A @ A.transpose(0, 2, 1)
    comp = rng.integers(0, C, args.frames)
    X = (means[comp] + np.einsum("tij,tj->ti", np.linalg.cholesky(covs)[comp],
                                 rng.normal(size=(args.frames, D)))).astype(np.float32)
    utts = {i: X[s:s + 300] for i, s in enumerate(range(0, len(X), 300))}
    ids = list(utts)
    gsel = (diag_coefficients(weights, means, np.diagonal(covs, axis1=1, axis2=2), 0.0), args.num_gselect)
    times, stats = {}, {}
    with threadpool_limits(limits=1, user_api="blas"):
        for _ in range(args.repeats):
            for name, func in (("all Gaussians", all_gaussian_stats), ("selected pairs", selected_stats)):
                start = time.process_time()
                stats[name] = func(ids, utts.__getitem__, weights, means, covs, gsel)
                times[name] = min(times.get(name, np.inf), time.process_time() - start)
    diff = max(np.abs(a - b).max() / np.abs(a).max() for a, b in zip(stats["all Gaussians"], stats["selected pairs"]))
    print(f"{args.frames} frames, {D} dims, {C} Gaussians, {args.num_gselect} selected, 1 BLAS thread, "
          f"best of {args.repeats} (CPU s per E-step)")
    for name, t in times.items():
        print(f"  {name:15s} {t:8.3f} s")
    print(f"  ratio           {times['all Gaussians'] / times['selected pairs']:8.2f}x   "
          f"(largest relative difference of N, F, S: {diff:.1e})")


if __name__ == "__main__":
    main()
