"""Bayes error-rate (applied probability of error, APE) plots of LLR scores (BOSARIS, Brümmer 2006).

For a prior log-odds ``eta = logit(P)`` the Bayes decision for LLR scores accepts ``score >= -eta``; its
error rate is ``E(eta) = P p_miss(-eta) + (1 - P) p_fa(-eta)``. The minimum over all thresholds (what
the scores could reach after the best monotonic calibration) and the default error ``min(P, 1 - P)``
(always accept or always reject) frame it. ``E / min(P, 1 - P)`` is the normalised DCF: at
``eta = logit(p_target)`` it is the actDCF (and the minimum the minDCF) of :mod:`spkrec.eval.metrics`.
"""
import numpy as np

from spkrec.eval.metrics import check_scores_labels, cllr, min_cllr, rocch
from spkrec.eval.plots_base import maybe_save, new_figure, system_style

PRIOR_LOG_ODDS = np.linspace(-7.0, 7.0, 281)


def bayes_error_rates(scores, labels, prior_log_odds=PRIOR_LOG_ODDS):
    """``(actual, minimum, default)`` Bayes error rates, each ``(len(prior_log_odds),)``.

    ``actual`` treats the scores as natural-log LLRs (threshold ``-eta``, accept ``score >= threshold``),
    ``minimum`` is the best error over all thresholds (on the ROC convex hull's vertices, where a linear
    cost is minimised), ``default`` is ``min(P, 1 - P)``.
    """
    scores, labels = check_scores_labels(scores, labels)
    eta = np.asarray(prior_log_odds, dtype=np.float64)
    p = 1.0 / (1.0 + np.exp(-eta))
    tar, non = np.sort(scores[labels]), np.sort(scores[~labels])
    thr = -eta
    p_miss = np.searchsorted(tar, thr, side="left") / tar.size          # targets below the threshold
    p_fa = 1.0 - np.searchsorted(non, thr, side="left") / non.size      # non-targets at or above it
    actual = p * p_miss + (1.0 - p) * p_fa
    hull_fa, hull_miss, _ = rocch(scores, labels)
    minimum = np.min(p[:, None] * hull_miss[None, :] + (1.0 - p[:, None]) * hull_fa[None, :], axis=1)
    return actual, minimum, np.minimum(p, 1.0 - p)


def plot_bayes_error(systems, out_png=None, p_target=0.01, title=None, prior_log_odds=PRIOR_LOG_ODDS):
    """APE plot of one or more score sets of the same trials (e.g. a system's raw and calibrated scores).

    ``systems``: list of ``(label, scores (n,), labels (n,) bool)``. Left: Bayes error rate against the
    prior log-odds, each system's actual rate (solid, its Cllr in the legend) and its minimum (dashed;
    drawn once when several systems share it, as a monotonic calibration does), the default system
    (dotted) and the operating point ``logit(p_target)`` (grey line). Right: the same normalised by the
    default (normalised DCF), 0 - 1.5.
    """
    eta = np.asarray(prior_log_odds, dtype=np.float64)
    fig = new_figure((11.0, 4.6))
    ax, axn = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    minima = []
    default = None
    for k, (label, scores, labels) in enumerate(systems):
        scores, labels = check_scores_labels(scores, labels, what=str(label))
        actual, minimum, default = bayes_error_rates(scores, labels, eta)
        style = system_style(k)
        for a, norm in ((ax, 1.0), (axn, default)):
            a.plot(eta, actual / norm, color=style["color"], linewidth=1.6,
                   label=f"{label}: actual (Cllr {cllr(scores, labels):.3f})")
        shared = [entry for entry in minima if np.allclose(minimum, entry[0])]
        if shared:                    # a monotonic transform (calibration) keeps the minimum
            shared[0][1].append(str(label))
        else:
            drawn = [a.plot(eta, minimum / norm, color=style["color"], linestyle="--", linewidth=1.2)[0]
                     for a, norm in ((ax, 1.0), (axn, default))]
            minima.append((minimum, [str(label)], drawn, min_cllr(scores, labels)))
    for _, names, drawn, mc in minima:
        for line in drawn:
            line.set_label(f"minimum of {', '.join(names)} (minCllr {mc:.3f})")
    if default is not None:
        ax.plot(eta, default, color="black", linestyle=":", linewidth=1.2, label="default (accept/reject all)")
        axn.plot(eta, np.ones_like(eta), color="black", linestyle=":", linewidth=1.2)
        ax.set_ylim(0.0, 1.05 * float(default.max()))
    at = float(np.log(p_target / (1.0 - p_target)))
    for a in (ax, axn):
        a.axvline(at, color="0.5", linewidth=0.8)
        a.set_xlim(eta[0], eta[-1])
        a.set_xlabel("prior log-odds logit(P_target)")
        a.grid(True, color="0.88", linewidth=0.6)
    ax.text(at, 0.01, f" p_target={p_target:g}", transform=ax.get_xaxis_transform(), va="bottom", fontsize=8,
            color="0.3")
    ax.set_ylabel("Bayes error rate")
    axn.set_ylabel("normalised DCF (Bayes error / default)")
    axn.set_ylim(0.0, 1.5)
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(title or "Bayes error rate (APE)")
    axn.set_title("normalised (actDCF / minDCF at p_target)")
    return maybe_save(fig, out_png)


def plot_bayes_error_grid(groups, out_png=None, p_target=0.01, title=None, ncols=3,
                          prior_log_odds=PRIOR_LOG_ODDS):
    """One APE panel per system: ``groups`` = list of ``(label, [(curve_label, scores, labels), ...])`` (e.g. a
    system's raw and calibrated scores). Each panel: the actual Bayes error rate of each score set (solid), the
    minimum (dashed, once when shared), the default (dotted) and ``logit(p_target)`` (grey)."""
    eta = np.asarray(prior_log_odds, dtype=np.float64)
    n = len(groups)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = new_figure((5.0 * ncols, 3.6 * nrows + 0.5))
    at = float(np.log(p_target / (1.0 - p_target)))
    for g, (label, curves) in enumerate(groups):
        ax = fig.add_subplot(nrows, ncols, g + 1)
        minima, default = [], None
        for k, (name, scores, labels) in enumerate(curves):
            scores, labels = check_scores_labels(scores, labels, what=f"{label} {name}")
            actual, minimum, default = bayes_error_rates(scores, labels, eta)
            colour = system_style(k)["color"]
            ax.plot(eta, actual, color=colour, linewidth=1.5, label=f"{name} (Cllr {cllr(scores, labels):.3f})")
            if not any(np.allclose(minimum, m) for m in minima):
                minima.append(minimum)
                ax.plot(eta, minimum, color=colour, linestyle="--", linewidth=1.1,
                        label=f"minimum (minCllr {min_cllr(scores, labels):.3f})")
        ax.plot(eta, default, color="black", linestyle=":", linewidth=1.0, label="default")
        ax.axvline(at, color="0.5", linewidth=0.8)
        ax.set_xlim(eta[0], eta[-1])
        ax.set_ylim(0.0, 1.05 * float(default.max()))
        ax.set_xlabel("prior log-odds")
        ax.set_ylabel("Bayes error rate")
        ax.grid(True, color="0.88", linewidth=0.6)
        ax.legend(fontsize=6, loc="upper left")
        ax.set_title(str(label), fontsize=10)
    fig.suptitle(f"{title or 'Bayes error rate (APE)'} (grey line: p_target={p_target:g})")
    fig.tight_layout()
    return maybe_save(fig, out_png)
