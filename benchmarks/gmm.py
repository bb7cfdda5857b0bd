"""Diagonal-GMM EM: spkrec vs sklearn.mixture.GaussianMixture on the same data, init and iterations.

    python benchmarks/gmm.py [--frames 300000 --dim 60 --gauss 512 --iters 3] [--data DATA_DIR]

Data: MFCC (python_speech_features, dim/3 cepstra) + deltas + double deltas of data/so762-mini with
per-utterance mean removal, tiled with small jitter up to ``--frames`` (or the frames of
``DATA_DIR/feats.scp`` through spkrec's FeatureLoader). Both trainers start from the same parameters
(means = random frames, global variances, uniform weights) and run the same number of iterations.
Prints seconds per iteration and the average log-likelihood per frame of both final models.
"""
import argparse
import glob
import os
import sys
import time
import warnings

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from spkrec.gmm import DiagGMM  # noqa: E402


def mini_mfcc(dim):
    import python_speech_features as psf
    from spkrec.io.audio import read_audio
    numcep = max(1, dim // 3)
    feats = []
    for path in sorted(glob.glob(os.path.join(ROOT, "data", "so762-mini", "WAVE", "*", "*.flac"))):
        sig, rate = read_audio(path)
        c = psf.mfcc(sig, rate, numcep=numcep, nfilt=max(26, numcep + 4))
        d = psf.delta(c, 2)
        x = np.hstack([c, d, psf.delta(d, 2)])[:, :dim]
        feats.append(x - x.mean(0))
    return np.concatenate(feats).astype(np.float32)


def load_data(args):
    if args.data:
        from spkrec.features.pipeline import FeatureLoader
        vad = os.path.join(args.data, "vad.scp")
        loader = FeatureLoader(os.path.join(args.data, "feats.scp"), vad if os.path.exists(vad) else None)
        X = np.concatenate([loader(u) for u in loader.utt_ids]).astype(np.float32)
    else:
        X = mini_mfcc(args.dim)
    rng = np.random.default_rng(0)
    reps = -(-args.frames // len(X))
    scale = 0.05 * X.std(0)
    X = np.concatenate([X + (rng.normal(size=X.shape) * scale if r else 0) for r in range(reps)])
    X = X[:args.frames]
    return np.ascontiguousarray(X, dtype=np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--frames", type=int, default=300000)
    p.add_argument("--dim", type=int, default=60)
    p.add_argument("--gauss", type=int, default=512)
    p.add_argument("--iters", type=int, default=3)
    p.add_argument("--data", default=None, help="data dir with feats.scp (default: so762-mini MFCCs)")
    p.add_argument("--skip-sklearn", action="store_true")
    args = p.parse_args()

    X = load_data(args)
    T, D = X.shape
    rng = np.random.default_rng(1)
    X64 = X.astype(np.float64)
    means = X64[rng.choice(T, args.gauss, replace=False)]
    variances = np.tile(X64.var(0), (args.gauss, 1))
    weights = np.full(args.gauss, 1.0 / args.gauss)
    print(f"data: {T} frames x {D} dims, {args.gauss} Gaussians, {args.iters} iterations")

    gmm = DiagGMM.from_params(weights, means, variances, chunk_frames=50000, min_gauss_frames=1e-8)
    gmm.var_floor_ = 1e-6 * X64.var(0)
    from spkrec.io.frames import ArrayFrames
    loader = ArrayFrames(X, gmm.chunk_frames)
    start = time.perf_counter()
    gmm.em_iterations(loader, loader.utt_ids, args.iters)
    t_spk = (time.perf_counter() - start) / args.iters

    from sklearn.mixture import GaussianMixture

    def sk_score(w, m, v):
        ref = GaussianMixture(len(w), covariance_type="diag")
        ref.weights_, ref.means_, ref.covariances_ = w, m, v
        ref.precisions_cholesky_ = 1.0 / np.sqrt(v)
        return ref.score(X64)

    ll_spk = sk_score(gmm.weights_, gmm.means_, gmm.variances_)
    rows = [("spkrec DiagGMM", t_spk, gmm.loglik_history_[-1], ll_spk)]
    if not args.skip_sklearn:
        sk = GaussianMixture(args.gauss, covariance_type="diag", init_params="random", weights_init=weights,
                             means_init=means, precisions_init=1.0 / variances, max_iter=args.iters, tol=0.0,
                             reg_covar=1e-6, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            sk.fit(X64)
            t_sk = (time.perf_counter() - start) / args.iters
        rows.append(("sklearn GaussianMixture", t_sk, sk.lower_bound_, sk_score(sk.weights_, sk.means_,
                                                                                  sk.covariances_)))
    print(f"{'trainer':<26}{'s/iter':>10}{'loglik@last E-step':>22}{'final loglik/frame':>22}")
    for name, t, ll_last, ll_final in rows:
        print(f"{name:<26}{t:>10.3f}{ll_last:>22.6f}{ll_final:>22.6f}")
    if len(rows) == 2:
        print(f"speed-up {rows[1][1] / rows[0][1]:.1f}x; final log-likelihood difference "
              f"{rows[0][3] - rows[1][3]:+.2e} per frame")


if __name__ == "__main__":
    main()
