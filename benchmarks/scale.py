"""Scale benchmark: time and peak memory of each recipe stage at 1x, 2x, 4x data with 1 and 2 workers,
cost per hour of audio, and projected wall time for full TIMIT and VoxCeleb1.

Usage: python benchmarks/scale.py [--corpus ../shared/corpora/so762-dev] [--factors 1,2,4] [--workers 1,2]
       [--backend loky|dask] [--num-gauss 256] [--tv-dim 100] [--work DIR] [--docs docs/scale.md]

The corpus (so762 layout: WAVE/SPEAKER<spk>/<utt>.flac, utt2spk) is replicated ``factor`` times into a
data dir (replica ``k`` of speaker ``s`` is speaker ``r<k>_<s>``; the audio files are shared, so the
features of replicas are equal, which is fine for timing). Every stage runs in its own process
(``python scale.py --stage NAME ...``) so that its peak resident memory is measured alone
(``os.wait4``, the largest process of the stage's tree, as ``/usr/bin/time -v`` reports it), with one
BLAS thread per process, so that "1 worker" means one core:

  features   spkrec compute-feats (MFCC, recipes/so762/conf/mfcc.conf)
  vad        spkrec compute-vad (recipes/so762/conf/vad.conf)
  ubm_iter   one EM iteration of a diagonal UBM (``--num-gauss``), streamed from the feature files
  stats      Baum-Welch statistics of every utterance for the i-vector extractor (20 Gaussians selected),
             written by the workers to chunk files (``write_stats``, as train-ivector-extractor does)
  tmat_iter  one EM iteration of the total-variability matrix (``--tv-dim``), reading those files
  extract    i-vector extraction of every utterance, streamed as extract-ivectors does (statistics and
             i-vectors per batch in the workers, ``extract_ivectors``): includes computing the statistics
  scoring    GMM-UBM: MAP enrolment of each speaker (first 10 utterances) and LLR of each other
             utterance against 10 models (its own and 9 others; top-5 Gaussians)

The cost of a stage is fitted as ``seconds = a + b * hours`` (least squares over the factors). The
projections multiply per-iteration stages by the recipe's iteration counts (``--ubm-equiv-iters``:
EM iterations at full size that split-initialisation plus final iterations cost; ``--tmat-iters``).
On ``N`` Dask workers, the per-hour part of every stage is divided by ``N`` times the measured 1->2
worker efficiency of that stage (capped at 1); the fixed part ``a`` (start-up, M-steps, writing scp
files) is taken as serial. Timings on a shared machine are noisy.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["features", "vad", "ubm_iter", "stats", "tmat_iter", "extract", "scoring"]
PER_ITER = {"ubm_iter", "tmat_iter"}
TARGETS = {"full TIMIT": 5.4, "VoxCeleb1": 352.0}  # hours of audio
BLAS_THREADS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
ESTEP = {}  # (work dir name, workers) -> seconds of one T-matrix E-step pass alone
EXTRA = {}  # further timings of a stage process, e.g. the T-matrix E-step alone
STARTUP = {}  # workers -> seconds each stage process spent starting its worker pool (not in the stage times)


# ---------------------------------------------------------------------------------------------- data
def make_data_dir(corpus, out, factor, max_speakers=None):
    """Replicate the so762-layout ``corpus`` (its first ``max_speakers`` speakers) ``factor`` times into
    data dir ``out``; returns hours of audio."""
    import soundfile as sf
    corpus, out = Path(corpus), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pairs = [line.split() for line in (corpus / "utt2spk").read_text().splitlines() if line.strip()]
    keep = sorted({spk for _, spk in pairs})[:max_speakers]
    pairs = [(utt, spk) for utt, spk in pairs if spk in keep]
    wav, u2s, seconds = [], [], 0.0
    for utt, spk in pairs:
        path = corpus / "WAVE" / f"SPEAKER{spk}" / f"{utt}.flac"
        seconds += sf.info(str(path)).duration
        for k in range(factor):
            wav.append(f"r{k}_{spk}-{utt} {path}")
            u2s.append(f"r{k}_{spk}-{utt} r{k}_{spk}")
    (out / "wav.scp").write_text("".join(line + "\n" for line in sorted(wav)))
    (out / "utt2spk").write_text("".join(line + "\n" for line in sorted(u2s)))
    return seconds * factor / 3600.0


# ---------------------------------------------------------------------------------------------- stages
def _import_spkrec(_):
    import importlib
    for module in ("spkrec.features.pipeline", "spkrec.gmm", "spkrec.ivector"):
        importlib.import_module(module)


def start_workers(nj, backend):
    """Start the stage process's worker pool (processes, imports) before the timed part: seconds.

    A recipe stage pays this once per process (the pool is reused by every call of the stage); it is
    reported on its own row so that the stages' per-hour costs and 1->2 efficiencies measure the
    parallel work itself."""
    from spkrec.parallel import ParallelConfig, map_items
    if nj <= 1 and backend == "loky":
        return 0.0
    start = time.perf_counter()
    map_items(_import_spkrec, range(4 * nj), ParallelConfig(nj=nj, backend=backend))
    return time.perf_counter() - start


def run_stage(name, work, nj, backend, num_gauss, tv_dim, ubm_path):
    """Run one stage in this process; returns the timed seconds (per iteration for iterative stages)."""
    from spkrec.parallel import ParallelConfig
    config = ParallelConfig(nj=nj, backend=backend)
    work = Path(work)
    data = work / "data"
    conf = ROOT / "recipes" / "so762" / "conf"
    if name == "features":
        from spkrec.features.pipeline import compute_features
        start = time.perf_counter()
        compute_features(data, work / f"mfcc_nj{nj}", "mfcc", config=conf / "mfcc.conf", parallel=config)
        return time.perf_counter() - start
    if name == "vad":
        from spkrec.features.pipeline import compute_vad
        start = time.perf_counter()
        compute_vad(data, work / f"vad_nj{nj}", config=conf / "vad.conf", parallel=config)
        return time.perf_counter() - start
    from spkrec.features.pipeline import FeatureLoader
    from spkrec.gmm import DiagGMM
    loader = FeatureLoader(data / "feats.scp", data / "vad.scp")
    ubm = DiagGMM.load(ubm_path)
    if name == "ubm_iter":
        start = time.perf_counter()
        ubm.em_iterations(loader, loader.utt_ids, 1, config)
        return time.perf_counter() - start
    from spkrec.ivector import IvectorExtractor, StatsArchive, extract_ivectors, write_stats
    stats_dir = work / f"stats_nj{nj}"
    if name == "stats":
        start = time.perf_counter()
        write_stats(ubm, loader, loader.utt_ids, stats_dir, config=config)
        return time.perf_counter() - start
    if name == "tmat_iter":
        archive = StatsArchive.from_dir(stats_dir)
        start = time.perf_counter()
        model = IvectorExtractor(n_components=tv_dim, n_iter=1, parallel=config).fit(archive, ubm=ubm)
        seconds = time.perf_counter() - start
        model.save(str(work / f"extractor_nj{nj}.npz"))
        start = time.perf_counter()
        model.set_params(parallel=config).objective(archive)  # the accumulation alone: one E-step pass, no M-step
        EXTRA["tmat_estep"] = time.perf_counter() - start
        return seconds
    if name == "extract":
        model = IvectorExtractor.load(str(work / f"extractor_nj{nj}.npz"))
        start = time.perf_counter()
        extract_ivectors(model, ubm, loader, loader.utt_ids, config=config)
        return time.perf_counter() - start
    if name == "scoring":
        from spkrec.gmm import enroll_speakers, score_trials
        from spkrec.io.datadir import read_table, utt2spk_to_spk2utt
        spk2utt = utt2spk_to_spk2utt(read_table(str(data / "utt2spk"), 2, 2, "utt2spk"))
        speakers = sorted(spk2utt)
        enroll = {s: sorted(spk2utt[s])[:10] for s in speakers}
        trials = []
        for i, s in enumerate(speakers):
            claims = [speakers[(i + j) % len(speakers)] for j in range(10)]
            trials += [(c, u) for u in sorted(spk2utt[s])[10:] for c in claims]
        start = time.perf_counter()
        models = enroll_speakers(ubm, loader, enroll, config=config)
        score_trials(ubm, models, loader, trials, config=config)
        return time.perf_counter() - start
    raise ValueError(f"unknown stage {name}")


def train_start_ubm(work, num_gauss, nj):
    """The UBM the timed stages use (split initialisation, one iteration per split); not timed."""
    from spkrec.features.pipeline import FeatureLoader
    from spkrec.gmm import DiagGMM
    from spkrec.parallel import ParallelConfig
    data = Path(work) / "data"
    loader = FeatureLoader(data / "feats.scp", data / "vad.scp")
    ubm = DiagGMM(n_components=num_gauss, n_iter=1, n_iter_per_split=1, parallel=ParallelConfig(nj=nj))
    ubm.fit(loader)
    path = Path(work) / "ubm.npz"
    ubm.save(str(path))
    return path


def measure(args, name, work, nj, ubm_path):
    """Run stage ``name`` in a child process: (seconds, peak RSS in MB of the largest process)."""
    cmd = [sys.executable, __file__, "--stage", name, "--work", str(work), "--nj", str(nj),
           "--backend", args.backend, "--num-gauss", str(args.num_gauss), "--tv-dim", str(args.tv_dim),
           "--ubm", str(ubm_path or "")]
    out = tempfile.TemporaryFile()
    env = dict(os.environ, **{v: "1" for v in BLAS_THREADS})  # a worker is one core, in-process too
    proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    text = out.read().decode(errors="replace")
    if proc.returncode != 0:
        sys.stderr.write(text)
        return None, None
    result = json.loads([line for line in text.splitlines() if line.startswith("{")][-1])
    STARTUP.setdefault(nj, []).append(result["startup"])
    if "tmat_estep" in result:
        ESTEP[(work.name, nj)] = result["tmat_estep"]
    return result["seconds"], usage.ru_maxrss / 1024.0


# ---------------------------------------------------------------------------------------------- analysis
def fit_cost(hours, seconds):
    """Least squares ``seconds = a + b * hours`` with ``a, b >= 0`` (a line through the origin when the
    free fit has a negative coefficient or there is one factor); returns (a, b)."""
    hours, seconds = np.asarray(hours, float), np.asarray(seconds, float)
    if len(hours) >= 2:
        b, a = np.polyfit(hours, seconds, 1)
        if a >= 0 and b >= 0:
            return float(a), float(b)
    return 0.0, float(hours @ seconds / (hours @ hours))


def report(args, hours, results):
    """Markdown tables: measurements, cost model and projections."""
    workers = args.workers
    iters = {"ubm_iter": args.ubm_equiv_iters, "tmat_iter": args.tmat_iters}
    subset = f" (first {args.max_speakers} speakers)" if args.max_speakers else ""
    lines = [f"Corpus {args.corpus}{subset} replicated {', '.join(f'{f}x' for f in args.factors)} "
             f"({', '.join(f'{hours[f]:.2f} h' for f in args.factors)}); backend {args.backend}; "
             f"UBM {args.num_gauss} Gaussians, i-vector dimension {args.tv_dim}.", "",
             "| stage | " + " | ".join(f"{f}x, {w} worker{'s' if w > 1 else ''} s (peak MB)"
                                      for f in args.factors for w in workers) + " |",
             "|---|" + "---:|" * (len(args.factors) * len(workers))]
    for stage in STAGES:
        cells = []
        for f in args.factors:
            for w in workers:
                s, m = results.get((stage, f, w), (None, None))
                cells.append("n/a" if s is None else f"{s:.2f} ({m:.0f})")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines += ["", "| stage | s per hour of audio (1 worker) | s per hour (2 workers) | 1->2 efficiency | "
              + " | ".join(f"{t}: 2 cores | {t}: 32 Dask workers" for t in TARGETS) + " |",
              "|---|---:|---:|---:|" + "---:|" * (2 * len(TARGETS))]
    totals = {t: [0.0, 0.0] for t in TARGETS}
    w1, w2 = min(workers), max(workers)
    for stage in STAGES:
        fits = {}
        for w in (w1, w2):
            pts = [(hours[f], results[(stage, f, w)][0]) for f in args.factors
                   if results.get((stage, f, w), (None,))[0] is not None]
            fits[w] = fit_cost(*zip(*pts)) if pts else None
        if fits[w1] is None or fits[w2] is None:
            lines.append(f"| {stage} | n/a | n/a | n/a |" + " n/a |" * (2 * len(TARGETS)))
            continue
        (a1, b1), (a2, b2) = fits[w1], fits[w2]
        big = max(args.factors)
        t1, t2 = results[(stage, big, w1)][0], results[(stage, big, w2)][0]
        eff = t1 / (t2 * w2 / w1) if w2 > w1 else 1.0
        n = iters.get(stage, 1)
        cells = []
        for t, h in TARGETS.items():
            local = n * (a2 + b2 * h)
            cluster = n * (a1 + b1 * h / (32 * min(eff, 1.0) if w2 > w1 else 32))
            totals[t][0] += local
            totals[t][1] += cluster
            cells += [_duration(local), _duration(cluster)]
        lines.append(f"| {stage}{f' (x{n} iterations)' if n > 1 else ''} | {b1:.1f} | {b2:.1f} | "
                     f"{100 * eff:.0f} % | " + " | ".join(cells) + " |")
    if STARTUP.get(w2):
        pool = float(np.median(STARTUP[w2]))
        cells = []
        for t in TARGETS:  # one pool start per stage process (7 stages; iterations reuse the pool)
            totals[t][0] += len(STAGES) * pool
            cells += [_duration(len(STAGES) * pool), "n/a"]
        lines.append(f"| worker pool start ({w2} workers, median {pool:.1f} s per stage process) | | | | "
                     + " | ".join(cells) + " |")
    lines.append("| **total** | | | | " + " | ".join(f"**{_duration(a)}** | **{_duration(b)}**"
                                                    for a, b in totals.values()) + " |")
    big = max(args.factors)
    e1, e2 = ESTEP.get((f"x{big}", w1)), ESTEP.get((f"x{big}", w2))
    if e1 and e2 and w2 > w1:
        lines += ["", f"T-matrix accumulation alone (one E-step pass over the {big}x statistics, without the "
                  f"serial M-step and minimum-divergence step): {e1:.2f} s with {w1} worker, {e2:.2f} s with "
                  f"{w2} workers, 1->2 efficiency {100 * e1 / (e2 * w2 / w1):.0f} %."]
    return "\n".join(lines)


def _duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=str(ROOT.parent / "shared" / "corpora" / "so762-dev"))
    p.add_argument("--factors", default="1,2,4")
    p.add_argument("--workers", default="1,2")
    p.add_argument("--backend", choices=["loky", "dask"], default="loky")
    p.add_argument("--max-speakers", type=int, default=None, help="use only the corpus' first N speakers")
    p.add_argument("--num-gauss", type=int, default=256)
    p.add_argument("--tv-dim", type=int, default=100)
    p.add_argument("--ubm-equiv-iters", type=float, default=8.0,
                   help="full-size EM iterations a UBM training costs (split init, 4 per split, + 4 final)")
    p.add_argument("--tmat-iters", type=int, default=10)
    p.add_argument("--work", default=None, help="working directory (default: a temporary one, removed)")
    p.add_argument("--docs", default=None, help="also write the tables into this Markdown file")
    p.add_argument("--stage", help=argparse.SUPPRESS)
    p.add_argument("--nj", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--ubm", default="", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stage:  # child process: one stage, set up as the spkrec CLI sets up its process
        from spkrec.parallel import tune_allocator
        tune_allocator()
        startup = start_workers(args.nj, args.backend)
        seconds = run_stage(args.stage, args.work, args.nj, args.backend, args.num_gauss, args.tv_dim, args.ubm)
        print(json.dumps({"seconds": seconds, "startup": startup, **EXTRA}))
        return
    args.factors = [int(f) for f in args.factors.split(",")]
    args.workers = [int(w) for w in args.workers.split(",")]
    work_root = Path(args.work or tempfile.mkdtemp(prefix="spkrec-scale-"))
    hours, results, ubm_path = {}, {}, None
    try:
        for factor in args.factors:
            work = work_root / f"x{factor}"
            hours[factor] = make_data_dir(args.corpus, work / "data", factor, args.max_speakers)
            for nj in args.workers:
                for stage in STAGES:
                    if stage == "ubm_iter" and ubm_path is None:
                        ubm_path = train_start_ubm(work, args.num_gauss, max(args.workers))
                    s, mb = measure(args, stage, work, nj, ubm_path)
                    results[(stage, factor, nj)] = (s, mb)
                    print(f"{factor}x {hours[factor]:.2f} h, {nj} worker(s), {stage}: "
                          + ("failed (n/a)" if s is None else f"{s:.2f} s, peak {mb:.0f} MB"), flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work_root, ignore_errors=True)
    table = report(args, hours, results)
    print(table)
    if args.docs:
        write_docs(Path(args.docs), table)


def write_docs(path, table):
    """Replace the benchmark section of ``path`` (between markers) with ``table``."""
    begin, end = "<!-- scale-benchmark -->", "<!-- /scale-benchmark -->"
    text = path.read_text() if path.exists() else f"{begin}\n{end}\n"
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    path.write_text(f"{head}{begin}\n{table}\n{end}{tail}")


if __name__ == "__main__":
    main()
