"""Figures: DET curves on normal-deviate axes, confusion matrices, score histograms.

Figures are built with matplotlib's object API on an Agg canvas (no pyplot, no display, no global
backend change), saved atomically (:func:`spkrec.io.atomic.atomic_path`: a temporary file in the target
directory, then renamed) and returned so callers and tests can inspect the axes.
"""
import os

import numpy as np

from spkrec.eval.metrics import check_scores_labels, det_curve, eer, min_dcf
from spkrec.io.atomic import atomic_path

DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)   # probabilities
DET_LIMITS = (0.0005, 0.5)
DET_EXTRA_TICKS = (0.6, 0.8, 0.9, 0.95, 0.99)   # added only when a marked point lies above 45 %


def _new_figure(size):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, dpi=120):
    """Write ``fig`` to ``path`` atomically; the format comes from the extension (png, pdf, svg)."""
    ext = os.path.splitext(os.fspath(path))[1]
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=(ext[1:] or "png"), bbox_inches="tight")


def probit(p):
    """Normal deviate ``Phi^-1(p)`` with ``p`` clipped to ``[1e-9, 1 - 1e-9]`` (finite plot coordinates)."""
    from scipy.special import ndtri
    return ndtri(np.clip(np.asarray(p, dtype=np.float64), 1e-9, 1.0 - 1e-9))


def _percent_label(p):
    return f"{100 * p:g}"


def det_corners(p_fa, p_miss):
    """Indices of the DET points to draw: drops the inner points of horizontal and vertical runs,
    which lie on the segment joining the run's ends, so the drawn curve is unchanged (and light)."""
    keep = np.ones(p_fa.size, dtype=bool)
    if p_fa.size > 2:
        same_miss = (p_miss[1:-1] == p_miss[:-2]) & (p_miss[1:-1] == p_miss[2:])
        same_fa = (p_fa[1:-1] == p_fa[:-2]) & (p_fa[1:-1] == p_fa[2:])
        keep[1:-1] = ~(same_miss | same_fa)
    return np.flatnonzero(keep)


def plot_det(systems, out_png=None, mark_eer=True, mark_min_dcf=True, p_target=0.01, c_miss=1.0, c_fa=1.0,
             title=None):
    """DET curves of several systems overlaid on probit axes (Martin et al. 1997).

    Parameters
    ----------
    systems : list of (label, scores (n,), labels (n,) bool)
    out_png : str, optional
        Where to save the figure (atomically); ``None`` only builds it.
    mark_eer, mark_min_dcf : bool
        Mark each system's EER point (on the diagonal) and its minDCF operating point.
    p_target, c_miss, c_fa : float
        Cost model of the minDCF marker.

    Returns the matplotlib ``Figure``: one Axes, x = false-alarm and y = miss probability (%), ticks at
    0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40 % (view 0.05-50 %, widened with 60/80/90/95/99 % ticks when a
    marked point lies higher), the dashed ``p_miss == p_fa`` line and a legend with EERs. Curves are
    drawn first so the systems keep matplotlib's colour order; markers at ``p = 0`` sit on the edge.
    """
    fig = _new_figure((6.0, 6.0))
    ax = fig.add_subplot(1, 1, 1)
    marks = []                      # (p_fa, p_miss, marker, colour)
    for label, scores, labels in systems:
        scores, labels = check_scores_labels(scores, labels, what=str(label))
        p_fa, p_miss, thresholds = det_curve(scores, labels)
        e, _ = eer(scores, labels)
        drawn = det_corners(p_fa, p_miss)
        line, = ax.plot(probit(p_fa[drawn]), probit(p_miss[drawn]), linewidth=1.6, zorder=3,
                        label=f"{label} (EER {100 * e:.2f} %)")
        if mark_eer:
            marks.append((e, e, "o", line.get_color()))
        if mark_min_dcf:
            _, thr = min_dcf(scores, labels, p_target, c_miss, c_fa)
            i = int(np.searchsorted(thresholds, thr))
            marks.append((p_fa[i], p_miss[i], "s", line.get_color()))
    # widen the view above 50 % when a marked point lies there (minDCF of a weak system at low p_target)
    top = max([0.0] + [max(pf, pm) for pf, pm, _, _ in marks])
    hi_p = DET_LIMITS[1]
    if top > 0.45:
        hi_p = next((p for p in DET_EXTRA_TICKS + (0.999,) if p > top + 0.02), 0.999)
    tick_p = DET_TICKS + tuple(p for p in DET_EXTRA_TICKS if p < hi_p)
    lo, hi = probit([DET_LIMITS[0], hi_p])
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="0.6", linewidth=0.8, zorder=1)
    for pf, pm, marker, color in marks:
        # points at p = 0 (probit -inf) sit on the axes' edge, where their curve leaves the view
        ax.plot([np.clip(probit(pf), lo, hi)], [np.clip(probit(pm), lo, hi)], marker=marker, markersize=6,
                color=color, markeredgecolor="black", linestyle="none", zorder=4, clip_on=False)
    ticks = probit(tick_p)
    names = [_percent_label(p) for p in tick_p]
    ax.set_xticks(ticks, names)
    ax.set_yticks(ticks, names)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("False alarm probability (%)")
    ax.set_ylabel("Miss probability (%)")
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.set_aspect("equal")
    handles, _ = ax.get_legend_handles_labels()
    if mark_eer or mark_min_dcf:
        from matplotlib.lines import Line2D
        if mark_eer:
            handles.append(Line2D([], [], marker="o", color="0.4", markeredgecolor="black", linestyle="none",
                                  label="EER"))
        if mark_min_dcf:
            handles.append(Line2D([], [], marker="s", color="0.4", markeredgecolor="black", linestyle="none",
                                  label=f"minDCF (p_target={p_target:g})"))
    ax.legend(handles=handles, loc="upper right", fontsize=8, framealpha=0.9)
    ax.set_title(title or "DET curve")
    if out_png is not None:
        save_figure(fig, out_png)
    return fig


def plot_confusion(matrix, labels, out_png=None, title=None):
    """Confusion-matrix image: rows = true speaker, columns = identified speaker; returns the ``Figure``.

    ``labels`` name the ``n`` classes; tick labels are shown when ``n <= 60``. Counts are printed in
    the cells when ``n <= 20``.
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    size = float(np.clip(2.0 + 0.18 * n, 4.0, 14.0))
    fig = _new_figure((size + 1.0, size))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="test utterances")
    if n <= 60:
        fontsize = 8 if n <= 30 else 6
        ax.set_xticks(np.arange(n), list(labels), rotation=90, fontsize=fontsize)
        ax.set_yticks(np.arange(n), list(labels), fontsize=fontsize)
    if n <= 20:
        top = matrix.max() if matrix.size else 0
        for (i, j), v in np.ndenumerate(matrix):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > top / 2 else "black")
    ax.set_xlabel("identified speaker")
    ax.set_ylabel("true speaker")
    correct = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(title or f"Confusion matrix (top-1 {100 * correct:.1f} %)")
    if out_png is not None:
        save_figure(fig, out_png)
    return fig


def plot_score_histograms(scores, labels, out_png=None, bins=50, title=None):
    """Target and non-target score histograms (densities on shared bins); returns the ``Figure``."""
    scores, labels = check_scores_labels(scores, labels)
    finite = np.isfinite(scores)
    edges = np.histogram_bin_edges(scores[finite], bins=bins)
    fig = _new_figure((7.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    ax.hist(scores[finite & ~labels], bins=edges, density=True, alpha=0.6, color="tab:red",
            label=f"non-target ({int((~labels).sum())})")
    ax.hist(scores[finite & labels], bins=edges, density=True, alpha=0.6, color="tab:blue",
            label=f"target ({int(labels.sum())})")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title(title or "Score distributions")
    if out_png is not None:
        save_figure(fig, out_png)
    return fig
