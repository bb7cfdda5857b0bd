"""Spoofing-countermeasure metrics: CM EER (per attack, pooled), min t-DCF, SASV-style EERs.

CM scores are higher for bona fide speech. ASV scores are higher for the claimed speaker.

t-DCF (ASVspoof 2019 evaluation plan, the "legacy"/v1 formulation of Kinnunen et al., Odyssey 2018)
for a fixed ASV system (threshold ``t_asv``, by default its EER threshold on bona fide trials) and a CM
threshold ``s``::

    C1 = P_tar (C_miss_cm - C_miss_asv P_miss_asv) - P_non C_fa_asv P_fa_asv
    C2 = C_fa_cm P_spoof (1 - P_miss_spoof_asv)
    t-DCF(s) = (C1 P_miss_cm(s) + C2 P_fa_cm(s)) / min(C1, C2)

with ``P_miss_asv = #(target < t)/N``, ``P_fa_asv = #(non-target >= t)/N``, ``P_miss_spoof_asv =
#(spoof < t)/N``, ``P_miss_cm(s)`` the fraction of bona fide CM scores below ``s`` and ``P_fa_cm(s)``
the fraction of spoof CM scores at or above ``s``; min t-DCF is the minimum over all CM thresholds.
Published costs (:data:`ASVSPOOF2019_COSTS`): P_spoof 0.05, P_tar 0.95*0.99, P_non 0.95*0.01,
C_miss_asv 1, C_fa_asv 10, C_miss_cm 1, C_fa_cm 10.

SASV EERs (SASV 2022 challenge): with one tandem score per trial, SASV-EER takes bona fide target
trials as positives and both bona fide non-target and spoofed trials as negatives; SV-EER only the
non-targets; SPF-EER only the spoofs.
"""
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.eval.metrics import det_curve, eer

ASVSPOOF2019_COSTS = {"p_spoof": 0.05, "p_tar": 0.95 * 0.99, "p_non": 0.95 * 0.01, "c_miss_asv": 1.0,
                      "c_fa_asv": 10.0, "c_miss_cm": 1.0, "c_fa_cm": 10.0}


def _scores(x, what):
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        raise SpkrecError(f"no {what} scores; the evaluation needs at least one")
    if not np.all(np.isfinite(x)):
        raise SpkrecError(f"{what} scores contain NaN or inf; fix the score file")
    return x


def two_class_eer(positive, negative, what=("positive", "negative")):
    """EER (fraction) and threshold of scores ``positive`` (should be high) vs ``negative``."""
    pos, neg = _scores(positive, what[0]), _scores(negative, what[1])
    return eer(np.concatenate([pos, neg]), np.concatenate([np.ones(pos.size), np.zeros(neg.size)]))


def cm_eer(bonafide, spoof, attacks=None):
    """CM EER ``{"pooled": (eer, thr), attack: (eer, thr), ...}``.

    ``bonafide`` (n,) and ``spoof`` (m,) CM scores; ``attacks`` (m,) the attack name of each spoof
    score (per-attack EERs use all bona fide scores against that attack's spoofs).
    """
    bona, spoof = _scores(bonafide, "bona fide CM"), _scores(spoof, "spoof CM")
    out = {"pooled": two_class_eer(bona, spoof, ("bona fide CM", "spoof CM"))}
    if attacks is not None:
        attacks = np.asarray(attacks).ravel()
        if attacks.size != spoof.size:
            raise SpkrecError(f"{attacks.size} attack labels for {spoof.size} spoof scores; give one per score")
        for name in sorted(set(attacks.tolist())):
            out[name] = two_class_eer(bona, spoof[attacks == name], ("bona fide CM", f"{name} CM"))
    return out


def asv_error_rates(target, nontarget, spoof, threshold):
    """``(P_fa_asv, P_miss_asv, P_miss_spoof_asv)`` at ASV ``threshold`` (accept ``score >= threshold``)."""
    tar, non, spf = _scores(target, "ASV target"), _scores(nontarget, "ASV non-target"), _scores(spoof, "ASV spoof")
    return float(np.mean(non >= threshold)), float(np.mean(tar < threshold)), float(np.mean(spf < threshold))


def tdcf_curve(bonafide_cm, spoof_cm, asv_target, asv_nontarget, asv_spoof, asv_threshold=None, costs=None):
    """Normalised t-DCF at every CM threshold: ``(tdcf (k,), cm_thresholds (k,))``, thresholds ascending
    (the last is +inf: reject everything). ``asv_threshold`` None = the ASV EER threshold on bona fide
    target vs non-target trials. ``costs`` overrides keys of :data:`ASVSPOOF2019_COSTS`."""
    c = dict(ASVSPOOF2019_COSTS)
    unknown = set(costs or {}) - set(c)
    if unknown:
        raise SpkrecError(f"unknown t-DCF cost(s) {', '.join(sorted(unknown))}; use {', '.join(c)}")
    c.update(costs or {})
    if asv_threshold is None:
        asv_threshold = two_class_eer(asv_target, asv_nontarget, ("ASV target", "ASV non-target"))[1]
    p_fa_asv, p_miss_asv, p_miss_spoof_asv = asv_error_rates(asv_target, asv_nontarget, asv_spoof, asv_threshold)
    c1 = c["p_tar"] * (c["c_miss_cm"] - c["c_miss_asv"] * p_miss_asv) - c["p_non"] * c["c_fa_asv"] * p_fa_asv
    c2 = c["c_fa_cm"] * c["p_spoof"] * (1.0 - p_miss_spoof_asv)
    if c1 <= 0 or c2 <= 0:
        raise SpkrecError(f"t-DCF is undefined for this ASV system (C1={c1:.4g}, C2={c2:.4g}): its errors are "
                          "too high, or no spoof passes it; check the ASV scores")
    bona, spf = _scores(bonafide_cm, "bona fide CM"), _scores(spoof_cm, "spoof CM")
    p_fa_cm, p_miss_cm, thresholds = det_curve(np.concatenate([bona, spf]),
                                               np.concatenate([np.ones(bona.size), np.zeros(spf.size)]))
    return (c1 * p_miss_cm + c2 * p_fa_cm) / min(c1, c2), thresholds


def min_tdcf(bonafide_cm, spoof_cm, asv_target, asv_nontarget, asv_spoof, asv_threshold=None, costs=None):
    """Minimum normalised t-DCF and the CM threshold reaching it: ``(min_tdcf, threshold)``."""
    curve, thresholds = tdcf_curve(bonafide_cm, spoof_cm, asv_target, asv_nontarget, asv_spoof,
                                   asv_threshold, costs)
    i = int(np.argmin(curve))
    return float(curve[i]), float(thresholds[i])


def sasv_eers(target, nontarget, spoof):
    """``{"sasv": eer, "sv": eer, "spf": eer}`` (fractions) of one tandem score per trial: bona fide
    targets against non-targets and spoofs together, against non-targets, against spoofs."""
    tar, non, spf = _scores(target, "target"), _scores(nontarget, "non-target"), _scores(spoof, "spoof")
    return {"sasv": two_class_eer(tar, np.concatenate([non, spf]))[0],
            "sv": two_class_eer(tar, non)[0], "spf": two_class_eer(tar, spf)[0]}


def tandem_rates(asv, cm, kinds, asv_threshold, cm_threshold):
    """Accept rates of ASV alone and of ASV followed by CM (accept iff ``asv >= asv_threshold`` and
    ``cm >= cm_threshold``), per trial kind: ``{kind: (asv_alone, tandem)}``; ``kinds`` holds
    ``"target"``, ``"nontarget"`` or ``"spoof"`` (or attack names) per trial. Miss rate of targets is
    ``1 - accept``."""
    asv, cm, kinds = np.asarray(asv, float), np.asarray(cm, float), np.asarray(kinds)
    if not asv.shape == cm.shape == kinds.shape:
        raise SpkrecError(f"ASV {asv.shape}, CM {cm.shape} and kinds {kinds.shape} must have one entry per trial")
    ok_asv = asv >= asv_threshold
    ok = ok_asv & (cm >= cm_threshold)
    return {k: (float(ok_asv[kinds == k].mean()), float(ok[kinds == k].mean())) for k in sorted(set(kinds.tolist()))}
