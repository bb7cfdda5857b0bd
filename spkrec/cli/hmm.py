"""``make-td-trials``, ``train-hmm``, ``enroll-hmm``, ``score-hmm``: text-dependent verification with HMMs.

Features come from ``DATA/feats.scp`` (and ``DATA/vad.scp`` when present) through
:class:`spkrec.features.pipeline.FeatureLoader`, as for the GMM verbs; the options used to train the
SI HMMs are stored with them and apply to enrolment and scoring unless given again. Phrases come from
``DATA/text`` (``<utt> <phrase>``).
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
SI_FILE = "hmms.npz"
MODELS_FILE = "speakers.npz"


def _groups(data, loader):
    """``{(speaker, phrase): [utt, ...]}`` of a data dir, every utterance checked against feats.scp."""
    from spkrec.io.datadir import DataDir
    from spkrec.io.prepare import _phrase_groups
    groups = _phrase_groups(DataDir(data))
    known = set(loader.utt_ids)
    for (spk, phrase), utts in groups.items():
        missing = [u for u in utts if u not in known]
        if missing:
            raise SpkrecError(f"{os.path.join(data, 'feats.scp')}: no features for {missing[0]!r} (speaker {spk}, "
                              f"phrase {phrase!r}); run compute-feats on {data}")
    return groups


def _load_si(path):
    from spkrec.hmm import PhraseHMMSet
    si = PhraseHMMSet.load(model_file(path, SI_FILE))
    return si, si.meta.get("features", {})


def _check_dim(si, path, loader):
    if loader.dim != si.dim_:
        raise SpkrecError(f"{loader.feats_scp}: features of dimension {loader.dim} do not fit the HMMs "
                          f"{model_file(path, SI_FILE)} of dimension {si.dim_}; use the feature options "
                          "they were trained with")


# ---------------------------------------------------------------------- make-td-trials
def add_make_td_trials(p):
    p.add_argument("--num-folds", type=positive_int, default=3, help="speaker folds (default %(default)s)")
    p.add_argument("--num-enroll", type=positive_int, default=5,
                   help="enrolment utterances per speaker and phrase (first ones by id) (default %(default)s)")
    p.add_argument("--num-test", type=positive_int, default=None,
                   help="test utterances per speaker and phrase (default: all the others)")
    p.add_argument("data", metavar="DATA", help="data dir with utt2spk and text (and feats.scp, copied)")
    p.add_argument("out_dir", metavar="OUT_DIR",
                   help="writes fold<k>/{train,enroll,enroll_models,test} and test/{trials,trials_<kind>,trial_kinds}")


def run_make_td_trials(args):
    from spkrec.io.prepare import make_td_folds
    for d, counts in make_td_folds(args.data, args.out_dir, args.num_folds, args.num_enroll, args.num_test).items():
        log.info("%s: %s", d, ", ".join(f"{k} {n}" for k, n in counts.items()))


# ---------------------------------------------------------------------- train-hmm
def add_train_hmm(p):
    p.add_argument("--num-states", type=positive_int, default=5, help="HMM states per phrase (default 5)")
    p.add_argument("--num-mix", type=positive_int, default=2, help="Gaussians per state (default 2)")
    p.add_argument("--num-iters", type=nonneg_int, default=5,
                   help="Baum-Welch iterations at full size (default %(default)s)")
    p.add_argument("--num-iters-per-split", type=nonneg_int, default=3,
                   help="iterations after each mixture split (default %(default)s)")
    p.add_argument("--var-floor", type=positive_float, default=1e-2,
                   help="variance floor as a fraction of the global variance (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (training is deterministic) (default 0)")
    add_feature_args(p)
    add_parallel_args(p)
    p.add_argument("data", metavar="DATA", help="data dir with feats.scp and text (background speakers)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="writes hmms.npz (all phrases), log/train_hmm.log")


def run_train_hmm(args):
    from spkrec.hmm import train_phrase_hmms
    opts = feature_options(args)
    loader = feature_loader(args.data, opts, command_options(args))
    phrase2utt = {}
    for (_, phrase), utts in _groups(args.data, loader).items():
        phrase2utt.setdefault(phrase, []).extend(utts)
    start = time.time()
    si = train_phrase_hmms(loader, phrase2utt, parallel_config(args), n_states=args.num_states,
                           n_components=args.num_mix, n_iter=args.num_iters,
                           n_iter_per_split=args.num_iters_per_split, var_floor=args.var_floor,
                           random_state=args.seed)
    si.meta["features"] = opts
    si.save(os.path.join(args.out_dir, SI_FILE))
    lines = [f"# train-hmm {args.data}: {len(phrase2utt)} phrases, {args.num_states} states x {args.num_mix} "
             f"Gaussians, {time.time() - start:.1f} s", "# phrase utterances avg_loglik_per_frame_per_iteration"]
    lines += [f"{p} {len(phrase2utt[p])} " + " ".join(f"{v:.5f}" for v in si[p].loglik_history_) for p in si.phrases]
    write_lines_atomic(os.path.join(args.out_dir, "log", "train_hmm.log"), lines)
    log.info("wrote %s (%d phrases)", os.path.join(args.out_dir, SI_FILE), len(si.phrases))


# ---------------------------------------------------------------------- enroll-hmm
def add_enroll_hmm(p):
    p.add_argument("--relevance-factor", type=positive_float, default=16.0,
                   help="MAP relevance factor r (default 16)")
    p.add_argument("--adapt", choices=["m", "mw", "mwv"], default="m",
                   help="adapt the state means (m), also the weights (mw), also the variances (mwv) (default m)")
    add_feature_args(p, "the HMMs")
    add_parallel_args(p)
    p.add_argument("si", metavar="SI_HMMS", help="SI HMMs: hmms.npz or the train-hmm dir")
    p.add_argument("enroll_data", metavar="ENROLL_DATA", help="data dir with feats.scp, utt2spk, text")
    p.add_argument("out_models", metavar="OUT_MODELS", help="output .npz, or a dir (writes speakers.npz)")


def run_enroll_hmm(args):
    from spkrec.hmm import enroll_speaker_hmms
    si, stored = _load_si(args.si)
    opts = feature_options(args, stored)
    loader = feature_loader(args.enroll_data, opts, command_options(args))
    _check_dim(si, args.si, loader)
    models = enroll_speaker_hmms(si, loader, _groups(args.enroll_data, loader), args.relevance_factor,
                                 parallel_config(args), args.adapt)
    out = model_file(args.out_models, MODELS_FILE)
    models.save(out)
    log.info("wrote %d speaker x phrase models to %s", len(models), out)


# ---------------------------------------------------------------------- score-hmm
def add_score_hmm(p):
    p.add_argument("--method", choices=["forward", "viterbi"], default="forward",
                   help="log-likelihood over all paths (forward) or the best one (viterbi) (default forward)")
    p.add_argument("--background", choices=["all", "claimed", "phrase"], default="all",
                   help="denominator: the best SI model of all phrases (all), the claimed phrase's SI model "
                        "(claimed), or the best SI model of the other phrases (phrase) (default all)")
    p.add_argument("--other-background-scores", default=None, metavar="FILE",
                   help="also write the scores against the other background (claimed if --background all, and "
                        "the reverse) to FILE, from the same pass")
    p.add_argument("--phrase-scores", default=None, metavar="FILE",
                   help="also write the scores against the best other phrase (--background phrase) to FILE, "
                        "from the same pass")
    add_feature_args(p, "the HMMs")
    add_parallel_args(p)
    p.add_argument("si", metavar="SI_HMMS", help="SI HMMs: hmms.npz or the train-hmm dir")
    add_scoring_io_args(p, "model-id", "speaker models from enroll-hmm (file or dir)")


def run_score_hmm(args):
    from spkrec.hmm import SpeakerHMMs, score_trials
    from spkrec.io.scores import write_scores
    si, stored = _load_si(args.si)
    models_path = model_file(args.models, MODELS_FILE)
    models = SpeakerHMMs.load(models_path)
    bad = [p for p in set(models.phrases) if p not in si]
    if bad or (len(models) and models.means.shape[1:] != si[si.phrases[0]].means_.shape):
        raise SpkrecError(f"{models_path}: models do not fit the SI HMMs {model_file(args.si, SI_FILE)}"
                          f"{f' (phrase {bad[0]!r} is not there)' if bad else ''}; enrol them with these HMMs")
    opts = feature_options(args, stored)
    loader = feature_loader(args.test_data, opts, command_options(args))
    _check_dim(si, args.si, loader)

    def missing_model(where, mid):
        phrase = mid.rsplit("-", 1)[-1] if "-" in mid else None
        if phrase is not None and phrase not in si:
            return (f"{where}: the phrase {phrase!r} of model {mid!r} has no HMM in {model_file(args.si, SI_FILE)} "
                    f"(phrases: {', '.join(si.phrases)}); train one or remove the trial")
        return f"{where}: no model {mid!r} (<speaker>-<phrase>) in {models_path}; enrol that speaker and phrase " \
               "or remove the trial"

    trials = read_checked_trials(args, models.index, loader, missing_model)
    outs = [(args.background, args.scores)]
    if args.other_background_scores:
        outs.append(("claimed" if args.background == "all" else "all", args.other_background_scores))
    if args.phrase_scores:
        outs.append(("phrase", args.phrase_scores))
    backgrounds = list(dict.fromkeys(bg for bg, _ in outs))
    scores = score_trials(si, models, loader, trials, args.method, backgrounds, parallel_config(args))
    for bg, out in outs:
        k = backgrounds.index(bg)
        write_scores(out, [(e, t, s) for (e, t, _), s in zip(trials, scores[:, k])])
        log.info("wrote %d scores (background %s) to %s", len(trials), backgrounds[k], out)


COMMANDS = {
    "make-td-trials": (add_make_td_trials, run_make_td_trials),
    "train-hmm": (add_train_hmm, run_train_hmm),
    "enroll-hmm": (add_enroll_hmm, run_enroll_hmm),
    "score-hmm": (add_score_hmm, run_score_hmm),
}
