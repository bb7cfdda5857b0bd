"""``train-full-ubm``, ``train-ivector-extractor``, ``extract-ivectors``, ``choose-ivector-size``."""
import contextlib
import logging
import os

import numpy as np

from spkrec.cli.common import (add_feature_args, add_parallel_args, command_options, feature_loader,
                               feature_options, model_file, nonneg_float, nonneg_int, parallel_config,
                               positive_float, positive_int)
from spkrec.errors import SpkrecError
from spkrec.io.atomic import load_npz, write_lines_atomic

log = logging.getLogger("spkrec")
UBM_FILE = "final.ubm.npz"
EXTRACTOR_FILE = "extractor.npz"


def _feature_options(args, meta):
    """Feature options: command line, else those stored with the model (in meta["features"] or meta)."""
    stored = meta.get("features") if isinstance(meta.get("features"), dict) else {}
    return feature_options(args, {**meta, **stored})



def _load_ubm(path, want=None):
    """Load a DiagGMM or FullGMM from a file or a directory holding final.ubm.npz."""
    path = model_file(path, UBM_FILE)
    kind = _model_kind(path)
    if want == "full" and kind != "FullGMM":
        raise SpkrecError(f"{path}: holds a {kind} model, --ubm full needs a full-covariance UBM; "
                          "run `spkrec train-full-ubm` first or pass --ubm diag")
    if want == "diag" and kind != "DiagGMM":
        raise SpkrecError(f"{path}: holds a {kind} model, --ubm diag needs a diagonal UBM from `spkrec train-ubm`")
    if kind == "FullGMM":
        from spkrec.ivector import FullGMM
        model = FullGMM.load(path)
        return model, model.meta_
    if kind == "DiagGMM":
        from spkrec.gmm import DiagGMM
        return DiagGMM.load(path), load_npz(path, "DiagGMM")[1]
    raise SpkrecError(f"{path}: holds a {kind} model, not a UBM")


def _model_kind(path):
    """The ``kind`` in a spkrec model file's header (reads only the header; SpkrecError when corrupt)."""
    from spkrec.io.atomic import read_npz_header
    return read_npz_header(path)["kind"]


# ---------------------------------------------------------------------- train-full-ubm
def add_train_full_ubm(p):
    p.add_argument("--num-iters", type=nonneg_int, default=4, help="EM iterations (default 4)")
    p.add_argument("--num-gselect", type=positive_int, default=20, help="Gaussians selected per frame by the diagonal UBM")
    p.add_argument("--variance-floor", type=positive_float, default=1e-3, help="covariance eigenvalue floor")
    p.add_argument("--min-gaussian-weight", type=nonneg_float, default=1e-5,
                   help="weights are floored at this value and renormalised (default %(default)g)")
    add_feature_args(p, "the UBM")
    add_parallel_args(p)
    p.add_argument("diag_ubm", help="diagonal UBM file or directory with final.ubm.npz (from train-ubm)")
    p.add_argument("data", help="data dir with feats.scp [vad.scp]")
    p.add_argument("out_dir", help="output directory (writes final.ubm.npz)")


def run_train_full_ubm(args):
    from spkrec.ivector import FullGMM
    diag, meta = _load_ubm(args.diag_ubm, "diag")
    opts = _feature_options(args, meta)
    loader = feature_loader(args.data, opts, command_options(args))
    model = FullGMM(n_iter=args.num_iters, num_gselect=args.num_gselect, variance_floor=args.variance_floor,
                    min_gaussian_weight=args.min_gaussian_weight, parallel=parallel_config(args))
    model.fit(loader, diag_ubm=diag)
    out = os.path.join(args.out_dir, UBM_FILE)
    model.save(out, meta={"features": opts})
    write_lines_atomic(os.path.join(args.out_dir, "log", "train_full_ubm.log"),
                       [f"iteration {i} cpu-seconds {c:.3f} average log-likelihood {v:.6f}"
                        for i, (v, c) in enumerate(zip(model.log_likelihood_history_, model.iteration_cpu_seconds_))])
    from spkrec.eval.plots_training import UBM_QUANTITY, write_objective_file
    write_objective_file(os.path.join(args.out_dir, "final.ubm.objective.txt"),
                         [("final", len(model.weights_), i + 1, v, None)
                          for i, v in enumerate(model.log_likelihood_history_)], UBM_QUANTITY, "train-full-ubm")
    log.info("wrote %s", out)


# ---------------------------------------------------------------------- train-ivector-extractor
def _stats_args(p):
    from spkrec.ivector.stats import STATS_DEFAULTS as d
    g = p.add_argument_group("Baum-Welch statistics")
    g.add_argument("--num-gselect", type=positive_int, default=d["num_gselect"],
                   help="Gaussians kept per frame (default %(default)s)")
    g.add_argument("--min-post", type=nonneg_float, default=d["min_post"],
                   help="posterior pruning threshold (default %(default)s)")
    g.add_argument("--posterior-scale", type=positive_float, default=d["posterior_scale"],
                   help="scale of the posteriors (default %(default)s)")


def add_train_extractor(p):
    p.add_argument("--tv-dim", type=positive_int, default=400, help="i-vector dimension (default 400)")
    p.add_argument("--num-iters", type=nonneg_int, default=10, help="EM iterations (default 10)")
    p.add_argument("--ubm", choices=["full", "diag"], default="full", help="kind of UBM in UBM_DIR (default full)")
    p.add_argument("--prior-offset", type=nonneg_float, default=100.0,
                   help="Kaldi-style prior mean on the first dimension; 0 = zero-mean prior (default 100)")
    p.add_argument("--no-min-divergence", action="store_true", help="skip the minimum-divergence step")
    p.add_argument("--pool-speakers", action="store_true",
                   help="train on statistics pooled per speaker (DATA/utt2spk): helps on small corpora")
    p.add_argument("--batch-size", type=positive_int, default=64, help="utterances per batch (default 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed of the initial T (default 0)")
    p.add_argument("--update-variances", type=_bool, default=False, metavar="true|false",
                   help="re-estimate the residual covariances Sigma each iteration (Kaldi --update-variances; "
                        "default false)")
    p.add_argument("--variance-floor-factor", type=float, default=0.1,
                   help="Sigma floor relative to the average data covariance (Kaldi; default 0.1)")
    p.add_argument("--min-gauss-count", type=float, default=10.0,
                   help="drop Gaussians whose total training occupancy is below this (default 10: a Gaussian "
                        "with fewer frames gives T a singular update; 0 keeps all); OUT_DIR/final.ubm.npz then "
                        "holds the kept Gaussians")
    p.add_argument("--heldout-data", default=None, metavar="DIR",
                   help="data dir of speakers not in DATA: the extractor objective per held-out utterance is "
                        "logged each iteration, with a warning when it ends negative or falling (over-fitting)")
    p.add_argument("--heldout-speakers", type=int, default=0, metavar="K",
                   help="keep K speakers of DATA (DATA/utt2spk) out of training for the same check (default 0)")
    p.add_argument("--keep-stats", action="store_true",
                   help="keep the statistics files OUT_DIR/stats/stats.<k>.npz (removed after training by default)")
    _stats_args(p)
    add_feature_args(p, "the UBM")
    add_parallel_args(p)
    p.add_argument("ubm_dir", help="UBM file or directory with final.ubm.npz")
    p.add_argument("data", help="training data dir with feats.scp [vad.scp] utt2spk")
    p.add_argument("out_dir", help="output directory (writes extractor.npz and final.ubm.npz)")


def _bool(text):
    value = str(text).lower()
    if value not in ("true", "false"):
        import argparse
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value == "true"


def _heldout_speakers(data, utts, k):
    """Training utterances and held-out utterances: ``k`` speakers of DATA/utt2spk spread evenly over the
    sorted speakers (deterministic), all their utterances held out."""
    from spkrec.io.datadir import DataDir
    dd = DataDir(data)
    if not (dd.has("utt2spk") or dd.has("spk2utt")):
        raise SpkrecError(f"{os.path.join(data, 'utt2spk')}: file not found; --heldout-speakers needs the speakers")
    speakers = sorted(dd.spk2utt)
    if k >= len(speakers):
        raise SpkrecError(f"{data}: --heldout-speakers {k} leaves no training speaker ({len(speakers)} speakers); "
                          "lower it")
    chosen = {speakers[i] for i in np.unique(np.round(np.linspace(0, len(speakers) - 1, k)).astype(int))}
    held = {u for s in chosen for u in dd.spk2utt[s]}
    return [u for u in utts if u not in held], [u for u in utts if u in held], sorted(chosen)


def run_train_extractor(args):
    from spkrec.ivector import IvectorExtractor, write_stats
    ubm, meta = _load_ubm(args.ubm_dir, args.ubm)
    opts = _feature_options(args, meta)
    loader = feature_loader(args.data, opts, command_options(args))
    config = parallel_config(args)
    utts = loader.utt_ids
    stats_opts = dict(num_gselect=args.num_gselect, min_post=args.min_post, posterior_scale=args.posterior_scale)
    if args.heldout_data and args.heldout_speakers:
        raise SpkrecError("pass one of --heldout-data and --heldout-speakers")
    held_utts, held_loader = [], None
    if args.heldout_speakers > 0:
        utts, held_utts, chosen = _heldout_speakers(args.data, utts, args.heldout_speakers)
        held_loader = loader
        log.info("held out %d speakers (%d utterances) for the over-fitting check", len(chosen), len(held_utts))
    elif args.heldout_data:
        held_loader = feature_loader(args.heldout_data, opts)
        held_utts = held_loader.utt_ids
    groups = None
    if args.pool_speakers:
        from spkrec.io.datadir import DataDir
        groups = DataDir(args.data).spk2utt
    # statistics go to disk, written by the workers; training reads them back one file at a time
    stats_dir = os.path.join(args.out_dir, "stats")
    archive = write_stats(ubm, loader, utts, stats_dir, config, groups=groups, batch_size=args.batch_size,
                          second_order=args.update_variances, **stats_opts)
    if args.pool_speakers:
        log.info("pooled statistics of %d utterances into %d speakers", len(utts), archive.num_utts)
    heldout, held_dir = None, os.path.join(args.out_dir, "heldout_stats")
    if held_utts:  # single utterances (what extraction sees), never pooled
        heldout = write_stats(ubm, held_loader, held_utts, held_dir, config, batch_size=args.batch_size,
                              second_order=args.update_variances, **stats_opts)
    model = IvectorExtractor(n_components=args.tv_dim, n_iter=args.num_iters, min_divergence=not args.no_min_divergence,
                             prior_offset=args.prior_offset, batch_size=args.batch_size, random_state=args.seed,
                             update_variances=args.update_variances, variance_floor_factor=args.variance_floor_factor,
                             min_gauss_count=args.min_gauss_count, parallel=config)
    model.fit(archive, ubm=ubm, heldout=heldout)
    if not args.keep_stats:
        for arch, directory in ((archive, stats_dir), (heldout, held_dir)):
            if arch is None:
                continue
            for path in arch.paths + ([arch.second_order_path] if arch.second_order_path else []):
                os.remove(path)
            with contextlib.suppress(OSError):
                os.rmdir(directory)
    os.makedirs(args.out_dir, exist_ok=True)
    model.kept_ubm(ubm).save(os.path.join(args.out_dir, UBM_FILE), meta={"features": opts})
    model.save(os.path.join(args.out_dir, EXTRACTOR_FILE), meta={"features": opts, "stats": stats_opts})
    held = model.heldout_objective_history_
    lines = [f"iteration {i} objective {v:.6f}" + (f" heldout-objective {held[i]:.6f}" if held else "")
             for i, v in enumerate(model.objective_history_)]
    warning = model.overfitting_warning()
    write_lines_atomic(os.path.join(args.out_dir, "log", "train_ivector_extractor.log"),
                       lines + ([f"warning: {warning}"] if warning else []))
    from spkrec.eval.plots_training import EXTRACTOR_QUANTITY, write_objective_file
    write_objective_file(os.path.join(args.out_dir, "extractor.objective.txt"),
                         [("final", model.T_.shape[0], i, v, held[i] if i < len(held) else None)
                          for i, v in enumerate(model.objective_history_)], EXTRACTOR_QUANTITY,
                         "train-ivector-extractor")
    log.info("wrote %s", os.path.join(args.out_dir, EXTRACTOR_FILE))


# ---------------------------------------------------------------------- extract-ivectors
def add_extract(p):
    p.add_argument("--batch-size", type=positive_int, default=None, help="utterances per batch")
    p.add_argument("--num-gselect", type=positive_int, default=None, help="default: as in training")
    p.add_argument("--min-post", type=nonneg_float, default=None, help="default: as in training")
    p.add_argument("--posterior-scale", type=positive_float, default=None, help="default: as in training")
    add_feature_args(p, "the UBM")
    add_parallel_args(p)
    p.add_argument("extractor_dir", help="directory with extractor.npz and final.ubm.npz (train-ivector-extractor)")
    p.add_argument("data", help="data dir with feats.scp [vad.scp] [spk2utt]")
    p.add_argument("out_dir", help="writes ivector.ark/.scp, spk_ivector.ark/.scp, num_utts.ark")


def run_extract(args):
    from spkrec.io.datadir import DataDir
    from spkrec.io.kaldi_io import write_vectors
    from spkrec.ivector import IvectorExtractor, extract_ivectors
    from spkrec.ivector.stats import STATS_DEFAULTS, stats_options
    extractor = IvectorExtractor.load(model_file(args.extractor_dir, EXTRACTOR_FILE))
    ubm_dir = args.extractor_dir if os.path.isdir(args.extractor_dir) else os.path.dirname(args.extractor_dir)
    ubm, _ = _load_ubm(ubm_dir)
    if args.batch_size:
        extractor.batch_size = args.batch_size
    meta = extractor.meta_
    stored = meta.get("stats", {})
    stats_opts = stats_options(stored, **{k: getattr(args, k) for k in STATS_DEFAULTS})
    loader = feature_loader(args.data, _feature_options(args, meta), command_options(args))
    config = parallel_config(args)
    utts = loader.utt_ids
    ivectors = extract_ivectors(extractor, ubm, loader, utts, config, **stats_opts)  # statistics stay in the workers
    out = args.out_dir
    write_vectors(os.path.join(out, "ivector.ark"), os.path.join(out, "ivector.scp"), zip(utts, ivectors))
    data = DataDir(args.data)
    if data.has("spk2utt") or data.has("utt2spk"):
        row = {u: i for i, u in enumerate(utts)}
        spk_rows, counts = [], []
        for spk, members in data.spk2utt.items():
            idx = [row[u] for u in members if u in row]
            if idx:
                spk_rows.append((spk, ivectors[idx].mean(0, dtype=np.float64).astype(np.float32)))
                counts.append(f"{spk} {len(idx)}")
        write_vectors(os.path.join(out, "spk_ivector.ark"), os.path.join(out, "spk_ivector.scp"), spk_rows)
        write_lines_atomic(os.path.join(out, "num_utts.ark"), counts)
    log.info("wrote %d i-vectors of dimension %d to %s", len(utts), ivectors.shape[1], out)


# ---------------------------------------------------------------------- choose-ivector-size
def _int_list(text):
    import argparse
    try:
        values = [int(v) for v in str(text).replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def add_choose_size(p):
    p.add_argument("--num-gauss", type=_int_list, default=[16, 32, 64], metavar="C,C,...",
                   help="UBM sizes of the grid (default 16,32,64)")
    p.add_argument("--tv-dims", type=_int_list, default=[50, 100], metavar="R,R,...",
                   help="T dimensions of the grid (default 50,100)")
    p.add_argument("--num-folds", type=int, default=3, help="folds of held-out speakers (default 3)")
    p.add_argument("--steps", default="center,lnorm,plda", help="back-end chain, as train-backend --steps (default %(default)s)")
    p.add_argument("--criterion", choices=["min_cllr", "eer"], default="min_cllr",
                   help="held-out criterion to minimise (default min_cllr)")
    p.add_argument("--ubm-iters", type=positive_int, default=2, help="UBM EM iterations per split (default 2)")
    p.add_argument("--tv-iters", type=positive_int, default=3, help="T EM iterations (default 3)")
    p.add_argument("--seed", type=int, default=0, help="random seed (folds, UBM, T; default 0)")
    add_feature_args(p)
    add_parallel_args(p)
    p.add_argument("data", help="background data dir with feats.scp [vad.scp] utt2spk")
    p.add_argument("out_dir", help="writes sizes.txt (num_gauss=C, tv_dim=R) and grid.md (the held-out table)")


def run_choose_size(args):
    import time
    from spkrec.io.datadir import DataDir
    from spkrec.ivector import choose_ivector_size
    dd = DataDir(args.data)
    if not (dd.has("utt2spk") or dd.has("spk2utt")):
        raise SpkrecError(f"{os.path.join(args.data, 'utt2spk')}: file not found; choose-ivector-size needs the speakers")
    loader = feature_loader(args.data, feature_options(args), command_options(args))
    spk_of = {u: s for s, members in dd.spk2utt.items() for u in members}
    utt2spk = {u: spk_of[u] for u in loader.utt_ids if u in spk_of}
    frames = {u: loader(u) for u in utt2spk}  # read once: every fold and size reuses them
    start, cpu = time.time(), time.process_time()
    best, rows = choose_ivector_size(frames, utt2spk, args.num_gauss, args.tv_dims, args.num_folds, args.steps,
                                     args.criterion, args.ubm_iters, args.tv_iters, args.seed, parallel_config(args))
    seconds = time.time() - start
    write_lines_atomic(os.path.join(args.out_dir, "sizes.txt"),
                       [f"num_gauss={best['num_gauss']}", f"tv_dim={best['tv_dim']}"])
    lines = [f"# choose-ivector-size {args.data}: {len(utt2spk)} utterances, {args.num_folds} folds of held-out "
             f"speakers, back end {args.steps}, criterion {args.criterion}, {args.ubm_iters} UBM / {args.tv_iters} "
             f"T iterations, {seconds:.1f} s ({time.process_time() - cpu:.1f} s CPU in this process)", "",
             "| UBM Gaussians | T dim | held-out minCllr | held-out EER % | minCllr per fold | EER % per fold | chosen |",
             "|---:|---:|---:|---:|---|---|---|"]
    for r in rows:
        chosen = "yes" if (r["num_gauss"], r["tv_dim"]) == (best["num_gauss"], best["tv_dim"]) else ""
        lines.append(f"| {r['num_gauss']} | {r['tv_dim']} | {r['min_cllr']:.4f} | {r['eer']:.2f} | "
                     + " ".join(f"{v:.3f}" for v in r["min_cllr_folds"]) + " | "
                     + " ".join(f"{v:.2f}" for v in r["eer_folds"]) + f" | {chosen} |")
    write_lines_atomic(os.path.join(args.out_dir, "grid.md"), lines)
    log.info("chose %d Gaussians, T dimension %d (held-out %s %.4f); wrote %s", best["num_gauss"], best["tv_dim"],
             args.criterion, best[args.criterion], os.path.join(args.out_dir, "sizes.txt"))


COMMANDS = {
    "train-full-ubm": (add_train_full_ubm, run_train_full_ubm),
    "train-ivector-extractor": (add_train_extractor, run_train_extractor),
    "extract-ivectors": (add_extract, run_extract),
    "choose-ivector-size": (add_choose_size, run_choose_size),
}
