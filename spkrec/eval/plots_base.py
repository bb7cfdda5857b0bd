"""Shared pieces of the figures: an Agg canvas without pyplot, atomic saving, system styles,
non-colliding tick labels.

Figures are built with matplotlib's object API on an Agg canvas (no pyplot, no display, no global
backend change), saved atomically (temporary file with the same extension in the target directory,
then renamed) and returned so callers and tests can inspect the axes.
"""
import os

import numpy as np

# 16 distinct colours (matplotlib's tab10, then 6 darker hues) x 4 line styles: system i gets colour i
# and style i % 4, so the first 16 systems differ in colour and neighbours also differ in style.
SYSTEM_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf", "#000000", "#000080", "#008080", "#b8860b", "#800000", "#ff00ff")
LINE_STYLES = ("-", "--", "-.", ":")
# markers drawn at intervals along a curve (not "o" and "s", which mark EER and minDCF points)
CURVE_MARKERS = ("^", "v", "D", "<", ">", "p", "h", "*", "X", "P", "d", "H", "8", "1", "2", "3")


def system_style(i):
    """Colour, line style and interval marker of the ``i``-th system (distinct for ``i < 16``; after 16
    the colours repeat with the next line style, so pairs stay distinct up to 64 systems)."""
    n = len(SYSTEM_COLOURS)
    return {"color": SYSTEM_COLOURS[i % n], "linestyle": LINE_STYLES[(i + i // n) % len(LINE_STYLES)],
            "marker": CURVE_MARKERS[i % len(CURVE_MARKERS)]}


def new_figure(size):
    """A ``Figure`` of ``size`` inches attached to an Agg canvas (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=size)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, path, dpi=120):
    """Write ``fig`` to ``path`` atomically (:func:`spkrec.io.atomic.atomic_path`); the format comes from
    the extension (png, pdf, svg)."""
    from spkrec.io.atomic import atomic_path
    ext = os.path.splitext(os.fspath(path))[1]
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=(ext[1:] or "png"), bbox_inches="tight")


def maybe_save(fig, out_png):
    if out_png is not None:
        save_figure(fig, out_png)
    return fig


def _axis(ax, axis):
    return ax.xaxis if axis == "x" else ax.yaxis


def tick_label_boxes(ax, axis="x"):
    """``[(text, Bbox)]`` of the shown (non-empty, inside the view) tick labels of ``axis``, in display
    coordinates, after drawing the figure."""
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    out = []
    for tick in _axis(ax, axis).get_major_ticks():
        label = tick.label1
        if label.get_visible() and label.get_text() and lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
            out.append((label.get_text(), label.get_window_extent(renderer)))
    return out


def overlapping(boxes, pad=0.0):
    """Pairs ``(i, j)`` of ``boxes`` (matplotlib Bbox list) that overlap or lie closer than ``pad`` pixels."""
    return [(i, j) for i in range(len(boxes)) for j in range(i + 1, len(boxes))
            if boxes[i].x0 < boxes[j].x1 + pad and boxes[j].x0 < boxes[i].x1 + pad
            and boxes[i].y0 < boxes[j].y1 + pad and boxes[j].y0 < boxes[i].y1 + pad]


def set_ticks_without_collisions(ax, axis, positions, names, keep=(), pad=3.0, **text_kw):
    """Put tick marks at ``positions`` and label those whose labels do not collide (the others keep their
    tick and grid line, unlabelled). Labels are taken greedily: first the names in ``keep`` (e.g. the
    decades), then the rest in axis order, each when it lies ``pad`` pixels clear of the kept ones."""
    names = list(names)
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    setter(positions, names, **text_kw)
    ax.figure.canvas.draw()
    renderer = ax.figure.canvas.get_renderer()
    boxes = [t.label1.get_window_extent(renderer) for t in _axis(ax, axis).get_major_ticks()][:len(names)]
    order = sorted(range(len(names)), key=lambda i: (names[i] not in keep, i))
    kept = []
    for i in order:
        if any(j == len(kept) for _, j in overlapping(kept + [boxes[i]], pad)):
            names[i] = ""
        else:
            kept.append(boxes[i])
    setter(positions, names, **text_kw)
    return names


def integer_ticks(values, max_ticks=8):
    """Integer tick positions spanning ``values`` (at most ``max_ticks``), for colour bars of counts."""
    from matplotlib.ticker import MaxNLocator
    lo, hi = float(np.min(values)), float(np.max(values))
    if hi <= lo:
        hi = lo + 1
    ticks = MaxNLocator(nbins=max_ticks, integer=True, min_n_ticks=2).tick_values(lo, hi)
    return [int(t) for t in ticks if lo - 1e-9 <= t <= hi + 1e-9]
