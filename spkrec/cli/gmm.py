"""``train-ubm``, ``enroll-gmm``, ``score-gmm``, ``extract-supervectors``.

Features come from ``DATA/feats.scp`` (and ``DATA/vad.scp`` when present) through
:class:`spkrec.features.pipeline.FeatureLoader`. The feature options used for the UBM are stored in
it; later verbs use them unless given on the command line, so all stages see the same features.
"""
import logging
import os
import time

from spkrec.cli.common import (add_feature_args, add_parallel_args, add_scoring_io_args, command_options,
                               feature_loader, feature_options, model_file, nonneg_int, parallel_config,
                               positive_float, positive_int, read_checked_trials)
from spkrec.errors import SpkrecError
from spkrec.io.atomic import write_lines_atomic

log = logging.getLogger("spkrec")
UBM_FILE = "final.ubm.npz"
MODELS_FILE = "speakers.npz"


# ---------------------------------------------------------------------- shared helpers
def _load_ubm(path):
    from spkrec.gmm import DiagGMM
    ubm = DiagGMM.load(model_file(path, UBM_FILE))
    return ubm, ubm.meta_.get("features", {})


def _check_dims(ubm, ubm_path, stored, loader, opts):
    """A one-line error when the features' dimension (after deltas) is not the UBM's."""
    if loader.dim == ubm.dim_:
        return
    order, model_order = opts["deltas_order"], stored.get("deltas_order", 2)
    raise SpkrecError(
        f"{loader.feats_scp}: features of dimension {loader.dim} ({loader.dim // (order + 1)} stored x "
        f"{order + 1} with --deltas-order {order}) do not fit the UBM {model_file(ubm_path, UBM_FILE)} of "
        f"dimension {ubm.dim_} ({ubm.dim_ // (model_order + 1) if ubm.dim_ % (model_order + 1) == 0 else '?'} x "
        f"{model_order + 1}, trained with feature options {stored or 'unknown'}); compute the features with the "
        "UBM's options (same conf/*.conf) or train a UBM on these")


# ---------------------------------------------------------------------- train-ubm
def add_train_ubm(p):
    p.add_argument("--num-gauss", type=positive_int, default=256, help="number of Gaussians (default %(default)s)")
    p.add_argument("--num-iters", type=nonneg_int, default=20,
                   help="EM iterations at full size (default %(default)s)")
    p.add_argument("--init", choices=["split", "kmeans"], default="split",
                   help="binary splitting from one Gaussian, or k-means (default %(default)s)")
    p.add_argument("--num-iters-per-split", type=nonneg_int, default=4,
                   help="EM iterations after each split (default 4)")
    p.add_argument("--subsample", type=positive_int, default=1, help="use every S-th frame (default 1)")
    p.add_argument("--var-floor", type=positive_float, default=1e-3,
                   help="variance floor as a fraction of the global variance (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (k-means init) (default 0)")
    add_feature_args(p)
    add_parallel_args(p)
    p.add_argument("data", metavar="DATA", help="data dir with feats.scp [vad.scp]")
    p.add_argument("ubm_dir", metavar="UBM_DIR", help="output dir: final.ubm.npz, log/train_ubm.log")


def run_train_ubm(args):
    from spkrec.gmm import DiagGMM
    opts = feature_options(args)
    loader = feature_loader(args.data, opts, command_options(args))
    start = time.time()
    gmm = DiagGMM(n_components=args.num_gauss, n_iter=args.num_iters, init=args.init,
                  n_iter_per_split=args.num_iters_per_split, var_floor=args.var_floor,
                  subsample=args.subsample, random_state=args.seed, verbose=True, parallel=parallel_config(args))
    gmm.fit(loader)
    gmm.save(os.path.join(args.ubm_dir, UBM_FILE), meta={"features": opts})
    lines = [f"# train-ubm {args.data}: {len(loader.utt_ids)} utterances, {args.num_gauss} Gaussians, "
             f"init {args.init}, {time.time() - start:.1f} s",
             "# stage num_gauss iteration avg_loglik_per_frame seconds"]
    secs, splits = gmm.iteration_seconds_, len(gmm.init_loglik_history_)
    lines += [f"split {c} {i + 1} {ll:.6f} {secs[i]:.4f}" for i, (c, ll) in enumerate(gmm.init_loglik_history_)]
    lines += [f"final {gmm.n_components_} {i + 1} {ll:.6f} {secs[splits + i]:.4f}"
              for i, ll in enumerate(gmm.loglik_history_)]
    write_lines_atomic(os.path.join(args.ubm_dir, "log", "train_ubm.log"), lines)
    from spkrec.eval.plots_training import UBM_QUANTITY, write_objective_file
    write_objective_file(os.path.join(args.ubm_dir, "final.ubm.objective.txt"),
                         [("split", c, i + 1, ll, None) for i, (c, ll) in enumerate(gmm.init_loglik_history_)]
                         + [("final", gmm.n_components_, i + 1, ll, None) for i, ll in enumerate(gmm.loglik_history_)],
                         UBM_QUANTITY, "train-ubm")
    log.info("wrote %s (final avg log-lik %.4f)", os.path.join(args.ubm_dir, UBM_FILE),
             gmm.loglik_history_[-1] if gmm.loglik_history_ else float("nan"))


# ---------------------------------------------------------------------- enroll-gmm
def add_enroll_gmm(p):
    p.add_argument("--relevance-factor", type=positive_float, default=16.0,
                   help="MAP relevance factor r (default 16)")
    p.add_argument("--adapt", choices=["m", "mw", "mwv"], default="m",
                   help="adapt means (m), also weights (mw), also variances (mwv) (default m)")
    add_feature_args(p, "the UBM")
    add_parallel_args(p)
    p.add_argument("ubm", metavar="UBM", help="UBM file or dir with final.ubm.npz")
    p.add_argument("enroll_data", metavar="ENROLL_DATA", help="data dir with feats.scp, spk2utt (or utt2spk)")
    p.add_argument("out_models", metavar="OUT_MODELS",
                   help="output .npz file, or a dir (writes speakers.npz)")


def _spk2utt(data):
    from spkrec.io.datadir import DataDir
    return DataDir(data).spk2utt  # spk2utt (checked against utt2spk), else built from utt2spk


def run_enroll_gmm(args):
    from spkrec.gmm.map import enroll_speakers
    ubm, stored = _load_ubm(args.ubm)
    opts = feature_options(args, stored)
    loader = feature_loader(args.enroll_data, opts, command_options(args))
    _check_dims(ubm, args.ubm, stored, loader, opts)
    spk2utt = _spk2utt(args.enroll_data)
    known = set(loader.utt_ids)
    for spk, utts in spk2utt.items():
        missing = [u for u in utts if u not in known]
        if missing:
            feats = os.path.join(args.enroll_data, "feats.scp")
            raise SpkrecError(f"{feats}: no features for {missing[0]!r} "
                              f"(speaker {spk}); run compute-feats on {args.enroll_data}")
    models = enroll_speakers(ubm, loader, spk2utt, args.relevance_factor, args.adapt, parallel_config(args))
    out = model_file(args.out_models, MODELS_FILE)
    models.save(out)
    log.info("wrote %d speaker models to %s", len(models), out)


# ---------------------------------------------------------------------- score-gmm
def add_score_gmm(p):
    g = p.add_mutually_exclusive_group()
    g.add_argument("--top-c", type=positive_int, default=5,
                   help="Gaussians selected per frame from the UBM (default 5)")
    g.add_argument("--exact", action="store_true", help="use all Gaussians (no top-C selection)")
    add_feature_args(p, "the UBM")
    add_parallel_args(p)
    p.add_argument("ubm", metavar="UBM", help="UBM file or dir with final.ubm.npz")
    add_scoring_io_args(p, "enroll-id", "speaker models from enroll-gmm (file or dir)")


def run_score_gmm(args):
    from spkrec.gmm import SpeakerGMMs, score_trials
    from spkrec.io.scores import write_scores
    ubm, stored = _load_ubm(args.ubm)
    models = SpeakerGMMs.load(model_file(args.models, MODELS_FILE))
    if models.means.shape[1:] != ubm.means_.shape:
        raise SpkrecError(f"{args.models}: models have {models.means.shape[1:]} means, the UBM "
                          f"{ubm.means_.shape}; enrol them with this UBM")
    opts = feature_options(args, stored)
    loader = feature_loader(args.test_data, opts, command_options(args))
    _check_dims(ubm, args.ubm, stored, loader, opts)
    trials = read_checked_trials(args, models.index, loader, lambda where, enroll: (
        f"{where}: no model for {enroll!r} in {args.models}; enrol that speaker or remove the trial"))
    top_c = None if args.exact else args.top_c
    scores = score_trials(ubm, models, loader, trials, top_c, parallel_config(args))
    write_scores(args.scores, [(e, t, s) for (e, t, _), s in zip(trials, scores)])
    log.info("wrote %d scores to %s", len(trials), args.scores)


# ---------------------------------------------------------------------- extract-supervectors
def add_extract_supervectors(p):
    p.add_argument("--relevance-factor", type=positive_float, default=16.0,
                   help="MAP relevance factor r (default 16)")
    add_feature_args(p, "the UBM")
    add_parallel_args(p)
    p.add_argument("ubm", metavar="UBM", help="UBM file or dir with final.ubm.npz")
    p.add_argument("data", metavar="DATA", help="data dir with feats.scp [vad.scp]")
    p.add_argument("out_dir", metavar="OUT_DIR", help="writes supervector.ark/.scp (one per utterance)")


def run_extract_supervectors(args):
    from spkrec.gmm import extract_supervectors
    from spkrec.io.kaldi_io import write_vectors
    ubm, stored = _load_ubm(args.ubm)
    opts = feature_options(args, stored)
    loader = feature_loader(args.data, opts, command_options(args))
    _check_dims(ubm, args.ubm, stored, loader, opts)
    utts = loader.utt_ids
    sv = extract_supervectors(ubm, loader, utts, args.relevance_factor, parallel_config(args))
    os.makedirs(args.out_dir, exist_ok=True)
    write_vectors(os.path.join(args.out_dir, "supervector.ark"),
                  os.path.join(args.out_dir, "supervector.scp"), zip(utts, sv))
    log.info("wrote %d supervectors of dimension %d to %s", len(utts), sv.shape[1], args.out_dir)


COMMANDS = {
    "train-ubm": (add_train_ubm, run_train_ubm),
    "enroll-gmm": (add_enroll_gmm, run_enroll_gmm),
    "score-gmm": (add_score_gmm, run_score_gmm),
    "extract-supervectors": (add_extract_supervectors, run_extract_supervectors),
}
