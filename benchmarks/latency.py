"""Latency of a loaded system bundle on one core: verify one 3 s file against one speaker, and identify one
3 s file among 1,000 enrolled speakers (from reading the file to the decision).

    python benchmarks/latency.py [SYSTEM ...] [--speakers 1000] [--repeats 7]

Without SYSTEM, two bundles are built first in a temporary folder from data/so762-mini with the mini
recipe's model sizes (diagonal UBM of 128 Gaussians; the i-vector front end's diagonal UBM of 32
Gaussians, T dimension 100, center + length norm + PLDA) but a single EM iteration per step: their
accuracy is irrelevant here, their sizes set the cost. Give the recipe's bundles
(recipes/mini/exp/systems/*) to time every system, S-norm and fusion included.
The 1,000 speakers are synthetic: each is enrolled (MAP means, or i-vectors) from 3 random so762-mini
utterances (their frames computed once). Times are medians of ``--repeats`` runs after one warm-up run,
with BLAS limited to one thread; the first (cold) identification also stacks the speaker models.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import soundfile as sf
from threadpoolctl import threadpool_limits

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CORPUS = os.path.join(ROOT, "data", "so762-mini")
CONF = os.path.join(ROOT, "recipes", "mini", "conf")


def spkrec(*args):
    subprocess.run([sys.executable, "-m", "spkrec.cli.main", *map(str, args), "-q"], check=True)


def build_bundles(work):
    """A GMM-UBM and an i-vector/PLDA bundle with the mini recipe's sizes (one EM iteration each)."""
    data, feats = os.path.join(work, "data"), ["--feat-config", os.path.join(CONF, "mfcc.conf"),
                                               "--vad-config", os.path.join(CONF, "vad.conf"), "--seed=0"]
    spkrec("prepare-data", "so762", CORPUS, data)
    spkrec("compute-feats", "--config", os.path.join(CONF, "mfcc.conf"), "--seed=0", "--nj", 2, data,
           os.path.join(work, "mfcc"))
    spkrec("compute-vad", "--config", os.path.join(CONF, "vad.conf"), data, os.path.join(work, "vad"))
    spkrec("train-ubm", "--num-gauss", 128, "--num-iters", 1, "--num-iters-per-split", 1, "--nj", 2, data,
           os.path.join(work, "ubm"))
    spkrec("train-ubm", "--num-gauss", 32, "--num-iters", 1, "--num-iters-per-split", 1, "--nj", 2, data,
           os.path.join(work, "ivector_ubm"))
    spkrec("train-ivector-extractor", "--ubm", "diag", "--tv-dim", 100, "--num-iters", 1, "--nj", 2,
           os.path.join(work, "ivector_ubm"), data, os.path.join(work, "ext"))
    spkrec("extract-ivectors", "--nj", 2, os.path.join(work, "ext"), data, os.path.join(work, "iv"))
    spkrec("train-backend", "--steps", "center,lnorm,plda", os.path.join(work, "iv", "ivector.scp"),
           os.path.join(data, "utt2spk"), os.path.join(work, "plda.npz"))
    out = [os.path.join(work, "systems", "gmm_ubm"), os.path.join(work, "systems", "ivec_plda")]
    spkrec("export-system", "--kind", "gmm_ubm", "--ubm", os.path.join(work, "ubm"), *feats, "--out", out[0])
    spkrec("export-system", "--kind", "ivector", "--extractor", os.path.join(work, "ext"), "--scoring", "plda",
           "--backend", os.path.join(work, "plda.npz"), *feats, "--out", out[1])
    return out


def median_ms(func, repeats):
    func()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        func()
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def bench(path, files, test, num_speakers, repeats, rng):
    from spkrec import load_system
    t = time.perf_counter()
    system = load_system(path)
    load_ms = 1000 * (time.perf_counter() - t)
    frames = [system.frames(f) for f in files]
    db = system.new_db()
    for i in range(num_speakers):
        pick = rng.choice(len(frames), 3, replace=False)
        db.add(f"spk{i:04d}", system.speaker_arrays([frames[j] for j in pick]))
    t = time.perf_counter()
    system.identify(db, test)
    cold_ms = 1000 * (time.perf_counter() - t)
    verify_ms = median_ms(lambda: system.verify(db, "spk0000", test), repeats)
    identify_ms = median_ms(lambda: system.identify(db, test, top=5), repeats)
    frames_ms = median_ms(lambda: system.frames(test), repeats)
    return {"system": system.name, "kind": system.kind, "load_ms": load_ms, "frontend_ms": frames_ms,
            "verify_ms": verify_ms, "identify_ms": identify_ms, "identify_cold_ms": cold_ms}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("systems", nargs="*", help="system bundle dirs (default: build two, see above)")
    p.add_argument("--speakers", type=int, default=1000, help="enrolled speakers for identification (default 1000)")
    p.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (default 7)")
    args = p.parse_args()
    from spkrec.parallel import tune_allocator
    tune_allocator()
    files = sorted(os.path.join(d, f) for d, _, names in os.walk(os.path.join(CORPUS, "WAVE"))
                   for f in names if f.endswith(".flac"))
    with tempfile.TemporaryDirectory() as work:
        systems = args.systems
        if not systems:
            t = time.perf_counter()
            systems = build_bundles(work)
            print(f"built {len(systems)} bundles in {time.perf_counter() - t:.1f} s (one EM iteration each)")
        x, rate = sf.read(files[0], dtype="int16")
        while len(x) < 3 * rate:
            x = np.concatenate([x, x])
        test = os.path.join(work, "test_3s.wav")
        sf.write(test, x[:3 * rate], rate)
        rows = []
        with threadpool_limits(limits=1, user_api="blas"):
            for path in systems:
                rows.append(bench(path, files, test, args.speakers, args.repeats, np.random.default_rng(0)))
    print(f"\none core, 3 s test file, {args.speakers} enrolled speakers; milliseconds (median of {args.repeats})\n")
    print("| system | kind | load bundle | front end | verify (1 speaker) | identify (top 5) | identify, first call |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['system']} | {r['kind']} | {r['load_ms']:.0f} | {r['frontend_ms']:.1f} | {r['verify_ms']:.1f} | "
              f"{r['identify_ms']:.1f} | {r['identify_cold_ms']:.1f} |")


if __name__ == "__main__":
    main()
