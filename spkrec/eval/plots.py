"""Figures of the evaluation: DET curves on normal-deviate axes, confusion matrices, score histograms.

Further figures live in :mod:`spkrec.eval.plots_calibration` (Bayes error rate / APE),
:mod:`spkrec.eval.plots_training` (EM objective per iteration) and :mod:`spkrec.eval.plots_vectors`
(PCA / t-SNE maps); all are re-exported here. Each function builds a matplotlib ``Figure`` on an Agg
canvas (no pyplot, nothing displayed), saves it atomically when given a path and returns it.
"""
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.eval.metrics import check_scores_labels, det_curve, eer, min_dcf
from spkrec.eval.plots_base import (maybe_save, new_figure, save_figure, set_ticks_without_collisions,  # noqa: F401
                                    system_style, integer_ticks)

DET_TICKS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4)   # probabilities, the default view's
DET_LIMITS = (0.001, 0.4)                                             # default view: 0.1 - 40 %
# candidate ticks for other views (--det-limits)
DET_ALL_TICKS = (1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4) + DET_TICKS + (0.5, 0.6, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995,
                                                                      0.998, 0.999)
DET_DECADES = ("0.001", "0.01", "0.1", "1", "10", "40", "90", "99", "99.9")
OVERLAP_TOLERANCE = 0.05      # probit units: curves closer than this everywhere in view are noted as overlapping


def _new_figure(size):          # kept for callers of the old private name
    return new_figure(size)


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


def check_det_limits(limits):
    """``(lo, hi)`` probabilities of a DET view, ``0 < lo < hi < 1`` (SpkrecError otherwise)."""
    lo, hi = (float(v) for v in limits)
    if not 0.0 < lo < hi < 1.0:
        raise SpkrecError(f"DET limits {100 * lo:g}-{100 * hi:g} %: need 0 < low < high < 100 %")
    return lo, hi


def det_in_view(p_fa, p_miss, limits, num=60):
    """The curve's ``probit(p_miss)`` at ``num`` points of ``probit(p_fa)`` spaced over the view (NaN where the
    curve leaves it): what :func:`det_overlaps` compares."""
    lo, hi = probit(limits)
    grid = np.linspace(lo, hi, num)
    x, y = probit(p_fa)[::-1], probit(p_miss)[::-1]   # p_fa ascending
    yi = np.interp(grid, x, y)
    yi[(yi < lo) | (yi > hi) | (grid < x[0]) | (grid > x[-1])] = np.nan
    return yi


def det_overlaps(curves, limits, tolerance=OVERLAP_TOLERANCE):
    """For each curve (list of ``(p_fa, p_miss)``), the indices of the earlier curves it lies on (within
    ``tolerance`` probit units wherever both are in view, at least 5 common points)."""
    sampled = [det_in_view(pf, pm, limits) for pf, pm in curves]
    out = []
    for i, a in enumerate(sampled):
        same = []
        for j in range(i):
            both = np.isfinite(a) & np.isfinite(sampled[j])
            if both.sum() >= 5 and np.max(np.abs(a[both] - sampled[j][both])) < tolerance:
                same.append(j)
        out.append(same)
    return out


def plot_det(systems, out_png=None, mark_eer=True, mark_min_dcf=True, p_target=0.01, c_miss=1.0, c_fa=1.0,
             title=None, limits=DET_LIMITS, curve_markers=True):
    """DET curves of several systems overlaid on probit axes (Martin et al. 1997).

    Parameters
    ----------
    systems : list of (label, scores (n,), labels (n,) bool)
    out_png : str, optional
        Where to save the figure (atomically); ``None`` only builds it.
    mark_eer, mark_min_dcf : bool
        Mark each system's EER point (circle, on the diagonal) and its minDCF operating point (square).
        A point outside the view is drawn hollow on the nearest edge; it never widens the view.
    p_target, c_miss, c_fa : float
        Cost model of the minDCF marker.
    title : str, optional
        Figure title (default "DET curve"; the recipes name the recipe and evaluation set).
    limits : (lo, hi) probabilities
        The view on both axes (default 0.1 % - 40 %).
    curve_markers : bool
        Draw each system's own marker at intervals along its curve (offset per system), so that curves
        lying on each other stay distinguishable; such curves are also noted in the legend ("= other").

    Returns the matplotlib ``Figure``: one Axes, x = false-alarm and y = miss probability (%), ticks at
    0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 40 % in the default view (a label that would collide with a
    neighbour's is left blank), the dashed ``p_miss == p_fa`` line and a legend with EERs. System ``i``
    has its own colour and line style (:func:`system_style`, distinct for 16 systems).
    """
    lim = check_det_limits(limits)
    lo, hi = probit(lim)
    fig = new_figure((10.0, 6.4))
    ax = fig.add_axes([0.08, 0.1, 0.56, 0.8])    # the legend goes right of the axes, never over a curve
    marks = []                      # (p_fa, p_miss, marker, colour)
    curves, labels_out, lines = [], [], []
    for k, (label, scores, labels) in enumerate(systems):
        scores, labels = check_scores_labels(scores, labels, what=str(label))
        p_fa, p_miss, thresholds = det_curve(scores, labels)
        e, _ = eer(scores, labels)
        drawn = det_corners(p_fa, p_miss)
        style = system_style(k)
        kw = {}
        if curve_markers:
            # markers every 12 % of the axes diagonal, shifted per system so coinciding curves alternate
            kw = dict(marker=style["marker"], markersize=5, markevery=(0.012 * (k % 10), 0.12),
                      markerfacecolor="none", markeredgewidth=1.0)
        line, = ax.plot(probit(p_fa[drawn]), probit(p_miss[drawn]), linewidth=1.5, zorder=3,
                        color=style["color"], linestyle=style["linestyle"], **kw)
        lines.append(line)
        curves.append((p_fa, p_miss))
        labels_out.append(f"{label} (EER {100 * e:.2f} %)")
        if mark_eer:
            marks.append((e, e, "o", style["color"]))
        if mark_min_dcf:
            _, thr = min_dcf(scores, labels, p_target, c_miss, c_fa)
            i = int(np.searchsorted(thresholds, thr))
            marks.append((p_fa[i], p_miss[i], "s", style["color"]))
    for k, same in enumerate(det_overlaps(curves, lim)):
        if same:
            labels_out[k] += "; overlaps " + ", ".join(str(systems[j][0]) for j in same)
    for line, text in zip(lines, labels_out):
        line.set_label(text)
    ax.plot([lo, hi], [lo, hi], linestyle="--", color="0.6", linewidth=0.8, zorder=1)
    for pf, pm, marker, color in marks:
        x, y = probit(pf), probit(pm)
        inside = lo <= x <= hi and lo <= y <= hi
        # a point outside the view (e.g. minDCF of a weak system at low p_target, or p = 0) sits hollow
        # on the nearest edge
        ax.plot([np.clip(x, lo, hi)], [np.clip(y, lo, hi)], marker=marker, markersize=6, color=color,
                markeredgecolor="black", markerfacecolor=color if inside else "none", linestyle="none",
                zorder=4, clip_on=False)
    eps = 1e-9
    tick_p = [p for p in DET_ALL_TICKS if lim[0] * (1 - eps) <= p <= lim[1] * (1 + eps)]
    if len(tick_p) < 2:
        tick_p = list(lim)
    ticks = probit(tick_p)
    names = [_percent_label(p) for p in tick_p]
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("False alarm probability (%)")
    ax.set_ylabel("Miss probability (%)")
    ax.grid(True, color="0.85", linewidth=0.6)
    ax.set_title(title or "DET curve")
    handles = list(lines)
    if mark_eer or mark_min_dcf:
        from matplotlib.lines import Line2D
        if mark_eer:
            handles.append(Line2D([], [], marker="o", color="0.4", markeredgecolor="black", linestyle="none",
                                  label="EER"))
        if mark_min_dcf:
            handles.append(Line2D([], [], marker="s", color="0.4", markeredgecolor="black", linestyle="none",
                                  label=f"minDCF (p_target={p_target:g}; hollow: outside the view)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.03, 1.0), borderaxespad=0.0,
              fontsize=7 if len(systems) > 8 else 8, framealpha=0.9)
    for axis in ("x", "y"):
        set_ticks_without_collisions(ax, axis, ticks, names, keep=DET_DECADES, fontsize=9)
    return maybe_save(fig, out_png)


def confusion_label_layout(n, axes_inches, min_font=5.0, max_font=9.0):
    """``(fontsize, step)`` of the speaker labels of an ``n x n`` matrix drawn on ``axes_inches``: the font
    fills 80 % of a cell (points), between ``min_font`` and ``max_font``; when even ``min_font`` does not fit,
    every ``step``-th label is shown."""
    cell = 72.0 * axes_inches / max(n, 1)
    font = float(np.clip(0.8 * cell, min_font, max_font))
    step = max(1, int(np.ceil(min_font / (0.8 * cell)))) if 0.8 * cell < min_font else 1
    return font, step


def plot_confusion(matrix, labels, out_png=None, title=None):
    """Confusion-matrix image: rows = true speaker, columns = identified speaker; returns the ``Figure``.

    ``labels`` name the ``n`` classes. Every speaker is labelled with a font scaled to the cell size
    (:func:`confusion_label_layout`; for very many speakers every n-th one). The colour bar counts test
    utterances with integer ticks; counts are printed in the cells when ``n <= 20``.
    """
    matrix = np.asarray(matrix)
    n = matrix.shape[0]
    size = float(np.clip(3.0 + 0.1 * n, 5.0, 16.0))
    fig = new_figure((size + 1.2, size))
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(matrix, cmap="Blues", interpolation="nearest", vmin=0)
    top = int(matrix.max()) if matrix.size else 0
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="test utterances",
                 ticks=integer_ticks([0, max(top, 1)]))
    font, step = confusion_label_layout(n, 0.8 * size)
    shown = [str(v) if i % step == 0 else "" for i, v in enumerate(labels)]
    ax.set_xticks(np.arange(n), shown, rotation=90, fontsize=font)
    ax.set_yticks(np.arange(n), shown, fontsize=font)
    if n <= 20:
        for (i, j), v in np.ndenumerate(matrix):
            if v:
                ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > top / 2 else "black")
    ax.set_xlabel("identified speaker")
    ax.set_ylabel("true speaker")
    correct = np.trace(matrix) / max(matrix.sum(), 1)
    ax.set_title(title or f"Confusion matrix (top-1 {100 * correct:.1f} %)")
    return maybe_save(fig, out_png)


def affine_inverse(raw, calibrated, value):
    """The raw score that a calibration maps to ``value``, from the aligned ``raw`` and ``calibrated``
    scores of the same trials: exact for spkrec's linear calibrations (least squares line), else by
    monotonic interpolation. ``None`` when the map is not increasing."""
    raw, calibrated = np.asarray(raw, np.float64), np.asarray(calibrated, np.float64)
    a, b = np.polyfit(raw, calibrated, 1)
    if a <= 0:
        return None
    if np.max(np.abs(a * raw + b - calibrated)) <= 1e-4 * (np.std(calibrated) + 1e-12):
        return float((value - b) / a)
    order = np.argsort(calibrated, kind="stable")
    return float(np.interp(value, calibrated[order], raw[order]))


def _draw_histograms(ax, scores, labels, bins, eer_threshold, bayes_threshold, bayes_label, fontsize=8):
    scores, labels = check_scores_labels(scores, labels)
    finite = np.isfinite(scores)
    edges = np.histogram_bin_edges(scores[finite], bins=bins)
    ax.hist(scores[finite & ~labels], bins=edges, density=True, alpha=0.6, color="tab:red",
            label=f"non-target ({int((~labels).sum())})")
    ax.hist(scores[finite & labels], bins=edges, density=True, alpha=0.6, color="tab:blue",
            label=f"target ({int(labels.sum())})")
    if eer_threshold:
        e, thr = eer(scores, labels)
        ax.axvline(thr, color="black", linewidth=1.2, label=f"EER threshold {thr:.3g} (EER {100 * e:.2f} %)")
    if bayes_threshold is not None:
        ax.axvline(bayes_threshold, color="tab:green", linestyle="--", linewidth=1.4,
                   label=bayes_label or f"Bayes threshold {bayes_threshold:.3g}")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.legend(fontsize=fontsize)


def plot_score_histograms(scores, labels, out_png=None, bins=50, title=None, eer_threshold=True,
                          bayes_threshold=None, bayes_label=None):
    """Target and non-target score histograms (densities on shared bins); returns the ``Figure``.

    ``eer_threshold`` draws the EER threshold (solid black line); ``bayes_threshold`` (a score, e.g. the
    Bayes threshold ``-logit(p_target)`` of calibrated scores mapped back by :func:`affine_inverse`) a
    dashed green line labelled ``bayes_label``.
    """
    fig = new_figure((7.0, 4.0))
    ax = fig.add_subplot(1, 1, 1)
    _draw_histograms(ax, scores, labels, bins, eer_threshold, bayes_threshold, bayes_label)
    ax.set_title(title or "Score distributions")
    return maybe_save(fig, out_png)


def plot_score_histogram_grid(panels, out_png=None, bins=50, title=None, ncols=3):
    """One histogram panel per system, ``ncols`` per row: ``panels`` = list of ``(label, scores, labels,
    bayes_threshold or None, bayes_label or None)``; each panel as :func:`plot_score_histograms` (the EER
    threshold always drawn). Returns the ``Figure`` (one Axes per system, in order)."""
    n = len(panels)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = new_figure((5.2 * ncols, 3.6 * nrows + 0.5))
    for k, (label, scores, labels, thr, text) in enumerate(panels):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        _draw_histograms(ax, scores, labels, bins, True, thr, text, fontsize=6)
        ax.set_title(str(label), fontsize=10)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return maybe_save(fig, out_png)


from spkrec.eval.plots_calibration import (bayes_error_rates, plot_bayes_error,  # noqa: E402,F401
                                           plot_bayes_error_grid)
from spkrec.eval.plots_training import (plot_objectives, read_objective, read_objective_file,  # noqa: E402,F401
                                        write_objective_file)
from spkrec.eval.plots_vectors import plot_vector_map, plot_vector_maps, vector_map  # noqa: E402,F401
