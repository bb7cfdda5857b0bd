"""``simulate-spoofs``, ``train-cm``, ``score-cm``, ``cm-threshold``, ``eval-cm``: spoofing countermeasures.

CM score files hold ``<utt> <score>`` lines (higher = bona fide). ``DATA/utt2attack`` names the attack
of each utterance (``bonafide`` for bona fide speech).
"""
import logging
import os

from spkrec.cli.common import (add_feature_args, add_parallel_args, command_options, feature_loader,
                               feature_options, nonneg_int, parallel_config, positive_float, positive_int)
from spkrec.errors import SpkrecError
from spkrec.io.atomic import write_lines_atomic, write_text_atomic

log = logging.getLogger("spkrec")


# ---------------------------------------------------------------------- simulate-spoofs
def add_simulate(p):
    p.add_argument("--attacks", default="griffin_lim,replay,world",
                   help="comma-separated attacks: griffin_lim, mel_griffin_lim, replay, world (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--no-bonafide", action="store_true", help="do not copy the bona fide utterances")
    add_parallel_args(p)
    p.add_argument("data", metavar="DATA_DIR", help="bona fide data dir (wav.scp, utt2spk)")
    p.add_argument("out", metavar="OUT_DIR", help="output data dir: wav/<attack>/*.wav, wav.scp, utt2spk, utt2attack")


def run_simulate(args):
    from spkrec.spoof.simulate import parse_attacks, simulate_data_dir
    counts = simulate_data_dir(args.data, args.out, parse_attacks(args.attacks), args.seed,
                               not args.no_bonafide, parallel_config(args))
    log.info("wrote %s: %s", args.out, ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


# ---------------------------------------------------------------------- train-cm
def add_train_cm(p):
    p.add_argument("--num-gauss", type=positive_int, default=512, help="Gaussians per GMM (default %(default)s)")
    p.add_argument("--num-iters", type=nonneg_int, default=10, help="EM iterations at full size (default %(default)s)")
    p.add_argument("--subsample", type=positive_int, default=1, help="use every S-th frame (default 1)")
    p.add_argument("--var-floor", type=positive_float, default=1e-3, help="relative variance floor (default %(default)s)")
    p.add_argument("--attacks", default=None, help="train on these spoof attacks only (default: all in utt2attack)")
    p.add_argument("--spoof-models", choices=["pooled", "per-attack"], default="pooled",
                   help="one spoof GMM on all attacks (the ASVspoof baseline), or one per attack scored by the "
                        "closest (default %(default)s)")
    p.add_argument("--combine", choices=["max", "logsumexp"], default="max",
                   help="per-attack score: minus the closest attack's, or minus the log mean of the attacks' "
                        "likelihoods (default %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_feature_args(p)
    add_parallel_args(p)
    p.add_argument("data", metavar="DATA", help="data dir with feats.scp and utt2attack")
    p.add_argument("cm_dir", metavar="CM_DIR", help="output dir: bonafide.gmm.npz, spoof.gmm.npz")


def _attack_split(data, loader, attacks=None):
    from spkrec.spoof.simulate import BONAFIDE, read_utt2attack
    utt2attack = read_utt2attack(data)
    known = set(loader.utt_ids)
    wanted = None if attacks is None else {a.strip() for a in attacks.split(",") if a.strip()}
    bona = [u for u, a in utt2attack.items() if a == BONAFIDE and u in known]
    spoof = [u for u, a in utt2attack.items() if a != BONAFIDE and u in known and (wanted is None or a in wanted)]
    if wanted:
        present = set(utt2attack.values())
        missing = sorted(wanted - present)
        if missing:
            raise SpkrecError(f"{os.path.join(data, 'utt2attack')}: no utterances of attack(s) {', '.join(missing)}; "
                              f"it has {', '.join(sorted(present))}")
    return bona, spoof, utt2attack


def run_train_cm(args):
    from spkrec.spoof.cm import GMMCountermeasure, feature_type_of
    opts = feature_options(args)
    loader = feature_loader(args.data, opts, command_options(args))
    bona, spoof, utt2attack = _attack_split(args.data, loader, args.attacks)
    feat_type = feature_type_of(os.path.join(args.data, "feats.scp"))
    cm = GMMCountermeasure(n_components=args.num_gauss, n_iter=args.num_iters, var_floor=args.var_floor,
                           subsample=args.subsample, random_state=args.seed,
                           spoof_models=args.spoof_models.replace("-", "_"), combine=args.combine)
    cm.fit(loader, bona, spoof, parallel_config(args),
           meta={"features": opts, "feat_type": feat_type, "attacks": args.attacks},
           spoof_attacks=[utt2attack[u] for u in spoof])
    cm.save(args.cm_dir)
    log.info("wrote %s (%d bona fide, %d spoofed utterances, %s features)", args.cm_dir, len(bona), len(spoof),
             feat_type or "unknown")


# ---------------------------------------------------------------------- score-cm
def add_score_cm(p):
    add_feature_args(p, "the CM")
    add_parallel_args(p)
    p.add_argument("cm_dir", metavar="CM_DIR", help="countermeasure from train-cm")
    p.add_argument("data", metavar="DATA", help="data dir with feats.scp of the utterances to score")
    p.add_argument("scores", metavar="SCORES", help="output: <utt> <score> lines (higher = bona fide)")


def run_score_cm(args):
    from spkrec.spoof.cm import GMMCountermeasure, feature_type_of
    cm = GMMCountermeasure.load(args.cm_dir)
    stored = cm.meta_.get("features", {})
    opts = feature_options(args, stored)
    feats = os.path.join(args.data, "feats.scp")
    loader = feature_loader(args.data, opts, command_options(args))
    trained, given = cm.meta_.get("feat_type"), feature_type_of(feats)
    if trained and given and trained != given:
        raise SpkrecError(f"{feats}: {given} features, but the CM {args.cm_dir} was trained on {trained}; "
                          f"compute {trained} features for {args.data} or use a {given} CM")
    if loader.dim != cm.dim_:
        raise SpkrecError(f"{feats}: features of dimension {loader.dim} (with deltas) do not fit the CM "
                          f"{args.cm_dir} of dimension {cm.dim_}; use the CM's feature options {stored}")
    scores = cm.score_utterances(loader, loader.utt_ids, parallel_config(args))
    write_lines_atomic(args.scores, [f"{u} {s:.6f}" for u, s in scores.items()])
    log.info("wrote %d CM scores to %s", len(scores), args.scores)


# ---------------------------------------------------------------------- cm-threshold
def add_cm_threshold(p):
    p.add_argument("--policy", default="bonafide-miss:0.02",
                   help="bayes:P (least Bayes error at spoof prior P), bonafide-miss:R (reject at most a "
                        "fraction R of bona fide) or eer (default %(default)s)")
    p.add_argument("cm_scores", metavar="CM_SCORES", help="held-out <utt> <score> lines (not the report set)")
    p.add_argument("data", metavar="DATA", help="data dir with utt2attack of the scored utterances")


def run_cm_threshold(args):
    from spkrec.spoof.cm import cm_threshold
    from spkrec.spoof.simulate import BONAFIDE, read_utt2attack
    scores, utt2attack = read_cm_scores(args.cm_scores), read_utt2attack(args.data)
    missing = [u for u in scores if u not in utt2attack]
    if missing:
        raise SpkrecError(f"utterance {missing[0]!r} of {args.cm_scores} has no utt2attack entry in {args.data}")
    bona = [s for u, s in scores.items() if utt2attack[u] == BONAFIDE]
    spoof = [s for u, s in scores.items() if utt2attack[u] != BONAFIDE]
    print(f"{cm_threshold(bona, spoof, args.policy):.6f}")


# ---------------------------------------------------------------------- eval-cm
def add_eval_cm(p):
    p.add_argument("--asv-scores", default=None, help="ASV score file on bona fide and spoofed test utterances")
    p.add_argument("--asv-trials", default=None, help="trials of --asv-scores (target/nontarget labels)")
    p.add_argument("--seen-attacks", default=None, help="attacks seen in CM training (for the seen/unseen rows)")
    p.add_argument("--cm-threshold", type=float, default=None,
                   help="CM threshold of the tandem (accept bona fide at score >= it), e.g. tuned on another "
                        "half (default: the pooled EER threshold of these scores, an oracle)")
    p.add_argument("--name", default="CM", help="system name in the table")
    p.add_argument("--out", default=None, help="also write the Markdown report here")
    p.add_argument("--det-plot", default=None, help="write DET curves of the CM (per attack and pooled) here (.png)")
    p.add_argument("cm_scores", metavar="CM_SCORES", help="<utt> <score> lines from score-cm")
    p.add_argument("data", metavar="DATA", help="data dir with utt2attack of the scored utterances")


def read_cm_scores(path):
    """``{utt: score}`` of a ``<utt> <score>`` file (one-line errors)."""
    import math
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: CM score file not found; run `spkrec score-cm` first")
    out = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            parts = line.split()
            try:
                if len(parts) != 2:
                    raise ValueError
                value = float(parts[1])
                if not math.isfinite(value):
                    raise ValueError
            except ValueError:
                raise SpkrecError(f"{path}:{lineno}: expected '<utt> <finite score>', got {line.strip()!r}") from None
            out[parts[0]] = value
    return out


def cm_report(cm_scores, utt2attack, name="CM", seen=None, asv=None, cm_threshold=None):
    """Markdown report and a dict of the numbers. ``asv``: list of ``(test_utt, asv_score, is_target)``;
    ``cm_threshold``: the tandem's CM threshold (None: the pooled EER threshold of ``cm_scores``)."""
    import numpy as np

    from spkrec.eval.spoof import cm_eer, min_tdcf, sasv_eers, tandem_rates, two_class_eer
    from spkrec.spoof.simulate import BONAFIDE
    missing = [u for u in cm_scores if u not in utt2attack]
    if missing:
        raise SpkrecError(f"utterance {missing[0]!r} of the CM scores has no utt2attack entry; score the same data dir")
    bona = np.array([s for u, s in cm_scores.items() if utt2attack[u] == BONAFIDE])
    spoof_utts = [u for u in cm_scores if utt2attack[u] != BONAFIDE]
    spoof = np.array([cm_scores[u] for u in spoof_utts])
    attacks = np.array([utt2attack[u] for u in spoof_utts])
    eers = cm_eer(bona, spoof, attacks)
    res = {"cm_eer": {k: v[0] for k, v in eers.items()}}
    lines = [f"### {name}: CM EER", "", "| attack | seen in training | bona fide | spoofed | CM EER (%) |",
             "|---|---|---:|---:|---:|"]
    seen = None if seen is None else set(seen)
    for att in sorted(set(attacks.tolist())):
        mark = "?" if seen is None else ("yes" if att in seen else "**no**")
        lines.append(f"| {att} | {mark} | {bona.size} | {int((attacks == att).sum())} | {100 * eers[att][0]:.2f} |")
    if seen is not None:
        for label, mask in (("pooled seen", np.isin(attacks, list(seen))), ("pooled unseen", ~np.isin(attacks, list(seen)))):
            if mask.any():
                value = two_class_eer(bona, spoof[mask])[0]
                res["cm_eer"][label] = value
                lines.append(f"| {label} | | {bona.size} | {int(mask.sum())} | {100 * value:.2f} |")
    lines.append(f"| pooled | | {bona.size} | {spoof.size} | {100 * eers['pooled'][0]:.2f} |")
    if asv:
        cm_thr = eers["pooled"][1] if cm_threshold is None else float(cm_threshold)
        thr_text = ("CM at its pooled EER (oracle)" if cm_threshold is None
                    else f"CM at the given threshold {cm_thr:g}")
        tar = [(u, s) for u, s, t in asv if t and utt2attack.get(u) == BONAFIDE]
        non = [(u, s) for u, s, t in asv if not t and utt2attack.get(u) == BONAFIDE]
        spf = [(u, s) for u, s, t in asv if t and utt2attack.get(u, BONAFIDE) != BONAFIDE]
        if not (tar and non and spf):
            raise SpkrecError("the ASV trials need bona fide target, bona fide non-target and spoofed target trials "
                              f"(got {len(tar)}, {len(non)}, {len(spf)}); check the trials and utt2attack")
        for group in (tar, non, spf):
            for u, _ in group:
                if u not in cm_scores:
                    raise SpkrecError(f"ASV test utterance {u!r} has no CM score; score it with score-cm")
        vals = {k: np.array([s for _, s in g]) for k, g in (("tar", tar), ("non", non), ("spf", spf))}
        asv_eer, asv_thr = two_class_eer(vals["tar"], vals["non"])
        tdcf, _ = min_tdcf(bona, spoof, vals["tar"], vals["non"], vals["spf"], asv_threshold=asv_thr)
        floor = min(v.min() for v in vals.values()) - 1000.0
        gated = {k: np.array([s if cm_scores[u] >= cm_thr else floor for u, s in g])
                 for k, g in (("tar", tar), ("non", non), ("spf", spf))}
        alone = sasv_eers(vals["tar"], vals["non"], vals["spf"])
        joint = sasv_eers(gated["tar"], gated["non"], gated["spf"])
        kinds = ["target"] * len(tar) + ["nontarget"] * len(non) + ["spoof"] * len(spf)
        asv_all = np.concatenate([vals["tar"], vals["non"], vals["spf"]])
        cm_all = np.array([cm_scores[u] for u, _ in tar + non + spf])
        rates = tandem_rates(asv_all, cm_all, kinds, asv_thr, cm_thr)
        spf_att = np.array([utt2attack[u] for u, _ in spf])
        res.update(asv_eer=asv_eer, min_tdcf=tdcf, sasv_asv_alone=alone, sasv_tandem=joint, tandem=rates)
        lines += ["", f"### {name}: ASV + CM", "",
                  f"ASV EER on bona fide trials {100 * asv_eer:.2f} % ({len(tar)} target, {len(non)} non-target "
                  f"trials; {len(spf)} spoofed target trials). Thresholds: ASV at its EER, {thr_text}; bona fide "
                  f"utterances the CM rejects: {100 * float(np.mean(bona < cm_thr)):.2f} %.", "",
                  "| metric | ASV alone | ASV then CM |", "|---|---:|---:|",
                  f"| target miss rate (%) | {100 * (1 - rates['target'][0]):.2f} | {100 * (1 - rates['target'][1]):.2f} |",
                  f"| non-target false-accept rate (%) | {100 * rates['nontarget'][0]:.2f} | {100 * rates['nontarget'][1]:.2f} |",
                  f"| spoof false-accept rate (%) | {100 * rates['spoof'][0]:.2f} | {100 * rates['spoof'][1]:.2f} |"]
        for att in sorted(set(spf_att.tolist())):
            a = tandem_rates(vals["spf"][spf_att == att], cm_all[len(tar) + len(non):][spf_att == att],
                                         np.array(["spoof"] * int((spf_att == att).sum())), asv_thr, cm_thr)["spoof"]
            lines.append(f"| spoof false-accept rate, {att} (%) | {100 * a[0]:.2f} | {100 * a[1]:.2f} |")
        lines += [f"| SASV-EER (%) | {100 * alone['sasv']:.2f} | {100 * joint['sasv']:.2f} |",
                  f"| SV-EER (%) | {100 * alone['sv']:.2f} | {100 * joint['sv']:.2f} |",
                  f"| SPF-EER (%) | {100 * alone['spf']:.2f} | {100 * joint['spf']:.2f} |",
                  f"| min t-DCF (ASVspoof 2019) | | {tdcf:.4f} |"]
    return "\n".join(lines) + "\n", res


def plot_cm_det(cm_scores, utt2attack, path, name="CM"):
    """DET curves (bona fide = target class) of each attack and of all attacks pooled."""
    import numpy as np

    from spkrec.eval.plots import plot_det
    from spkrec.spoof.simulate import BONAFIDE
    bona = [s for u, s in cm_scores.items() if utt2attack.get(u) == BONAFIDE]
    systems = []
    attacks = sorted({utt2attack[u] for u in cm_scores if utt2attack.get(u, BONAFIDE) != BONAFIDE})
    for att in attacks + ["pooled"]:
        spoof = [s for u, s in cm_scores.items() if utt2attack.get(u, BONAFIDE) != BONAFIDE
                 and (att == "pooled" or utt2attack[u] == att)]
        systems.append((att, np.array(bona + spoof), np.array([True] * len(bona) + [False] * len(spoof))))
    plot_det(systems, path, mark_min_dcf=False, title=f"{name}: bona fide vs spoof")


def run_eval_cm(args):
    from spkrec.io.scores import read_scores
    from spkrec.io.trials import read_trials
    from spkrec.spoof.simulate import read_utt2attack
    if (args.asv_scores is None) != (args.asv_trials is None):
        raise SpkrecError("give both --asv-scores and --asv-trials, or neither")
    asv = None
    if args.asv_scores:
        labels = {(e, t): lab for e, t, lab in read_trials(args.asv_trials)}
        asv = []
        for e, t, s in read_scores(args.asv_scores):
            if (e, t) not in labels:
                raise SpkrecError(f"{args.asv_scores}: trial {e} {t} is not in {args.asv_trials}; use the scored trials")
            asv.append((t, s, labels[(e, t)]))
    seen = None
    if args.seen_attacks:
        seen = [a for a in args.seen_attacks.split(",") if a.strip()]
    cm_scores, utt2attack = read_cm_scores(args.cm_scores), read_utt2attack(args.data)
    text, _ = cm_report(cm_scores, utt2attack, args.name, seen, asv, args.cm_threshold)
    if args.det_plot:
        plot_cm_det(cm_scores, utt2attack, args.det_plot, args.name)
    if args.out:
        write_text_atomic(args.out, text)
    print(text, end="")


COMMANDS = {
    "simulate-spoofs": (add_simulate, run_simulate),
    "train-cm": (add_train_cm, run_train_cm),
    "score-cm": (add_score_cm, run_score_cm),
    "cm-threshold": (add_cm_threshold, run_cm_threshold),
    "eval-cm": (add_eval_cm, run_eval_cm),
}
