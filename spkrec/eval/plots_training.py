"""EM objective per iteration: the side files the training verbs write, and their plot.

``train-ubm`` writes ``UBM_DIR/final.ubm.objective.txt`` (average log-likelihood per frame),
``train-full-ubm`` the same for the full-covariance UBM, ``train-ivector-extractor``
``OUT_DIR/extractor.objective.txt`` (objective per utterance, and per held-out utterance when asked).
Format: ``#`` comment lines (the first names the quantity: ``# quantity: ...``), then one line per EM
iteration ``<stage> <num_gauss> <iteration> <objective> <heldout>`` (``stage`` = ``split`` while a UBM is
grown by binary splitting, else ``final``; ``heldout`` = ``nan`` when not measured).
"""
import os

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.eval.plots_base import maybe_save, new_figure, system_style

COLUMNS = ("stage", "num_gauss", "iteration", "objective", "heldout")
UBM_QUANTITY = "average log-likelihood per frame"
EXTRACTOR_QUANTITY = "objective per utterance (log-likelihood relative to the UBM)"


def write_objective_file(path, rows, quantity, command=""):
    """Write ``rows`` of ``(stage, num_gauss, iteration, objective, heldout or None)`` atomically."""
    from spkrec.io.atomic import write_lines_atomic
    lines = [f"# quantity: {quantity}", f"# written by: spkrec {command}".rstrip(), "# " + " ".join(COLUMNS)]
    for stage, size, it, value, held in rows:
        held = float("nan") if held is None else float(held)
        lines.append(f"{stage} {int(size)} {int(it)} {float(value):.6f} {held:.6f}")
    write_lines_atomic(path, lines)


def read_objective_file(path):
    """``dict(quantity, stage (list), num_gauss, iteration, objective, heldout (arrays))`` of a side file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise SpkrecError(f"{path}: objective file not found; it is written by train-ubm, train-full-ubm and "
                          "train-ivector-extractor")
    out = {"quantity": "objective", "stage": [], "num_gauss": [], "iteration": [], "objective": [], "heldout": []}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            if text.startswith("#"):
                if text.startswith("# quantity:"):
                    out["quantity"] = text.split(":", 1)[1].strip()
                continue
            fields = text.split()
            try:
                if len(fields) != 5:
                    raise ValueError
                values = int(fields[1]), int(fields[2]), float(fields[3]), float(fields[4])
            except ValueError:
                raise SpkrecError(f"{path}:{lineno}: expected '<stage> <num_gauss> <iteration> <objective> "
                                  f"<heldout>', got {text[:60]!r}; re-run the training verb") from None
            out["stage"].append(fields[0])
            for key, v in zip(COLUMNS[1:], values):
                out[key].append(v)
    if not out["objective"]:
        raise SpkrecError(f"{path}: no iterations; the model was trained with 0 EM iterations")
    for key in COLUMNS[1:]:
        out[key] = np.asarray(out[key], dtype=np.float64 if key in ("objective", "heldout") else np.int64)
    return out


def _from_model(path):
    """The history stored in a model .npz (final iterations only for a UBM)."""
    from spkrec.io.atomic import load_npz, read_npz_header
    kind = read_npz_header(path)["kind"]
    arrays, _ = load_npz(path, kind)
    if kind == "DiagGMM" and arrays["loglik_history"].size:
        obj, quantity = arrays["loglik_history"], UBM_QUANTITY
        held = np.full(obj.size, np.nan)
        size = arrays["weights"].shape[0]
    elif kind == "IvectorExtractor" and arrays["objective_history"].size:
        obj, quantity = arrays["objective_history"], EXTRACTOR_QUANTITY
        held = np.full(obj.size, np.nan)
        h = arrays.get("heldout_objective_history", np.zeros(0))
        held[:h.size] = h[:obj.size]
        size = 0
    else:
        raise SpkrecError(f"{path}: a {kind} model without an objective history; pass the objective file "
                          "written next to it by the training verb")
    n = obj.size
    return {"quantity": quantity, "stage": ["final"] * n, "num_gauss": np.full(n, size, np.int64),
            "iteration": np.arange(int(kind == "DiagGMM"), n + int(kind == "DiagGMM")), "objective": np.asarray(obj),
            "heldout": held}


def read_objective(path):
    """The EM history behind ``path``: an objective side file, a model .npz (its stored history: without
    the splitting iterations of a UBM), or a model dir (its side file, else its model)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in ("extractor.objective.txt", "final.ubm.objective.txt"):
            if os.path.exists(os.path.join(path, name)):
                return read_objective_file(os.path.join(path, name))
        for name in ("extractor.npz", "final.ubm.npz"):
            if os.path.exists(os.path.join(path, name)):
                return _from_model(os.path.join(path, name))
        raise SpkrecError(f"{path}: no objective file or model in this directory")
    if path.endswith(".npz"):
        side = path[:-len(".npz")] + ".objective.txt"
        return read_objective_file(side) if os.path.exists(side) else _from_model(path)
    return read_objective_file(path)


def plot_objectives(curves, out_png=None, title=None):
    """One panel per training run: its EM objective against the iteration (1, 2, ... over all stages).

    ``curves``: list of ``(label, history)`` with ``history`` from :func:`read_objective`. A UBM's
    splitting stages are separated by dotted lines labelled with the number of Gaussians; a held-out
    objective (extractor) is drawn dashed.
    """
    n = max(len(curves), 1)
    fig = new_figure((4.8 * n, 4.0))
    for k, (label, h) in enumerate(curves):
        ax = fig.add_subplot(1, n, k + 1)
        x = np.arange(1, len(h["objective"]) + 1)
        style = system_style(k)
        ax.plot(x, h["objective"], color=style["color"], marker="o", markersize=3.5, linewidth=1.4,
                label="training data")
        if np.isfinite(h["heldout"]).any():
            ax.plot(x, h["heldout"], color=style["color"], marker="s", markersize=3.5, linestyle="--",
                    linewidth=1.2, label="held-out data (after the iteration)")
        sizes = np.asarray(h["num_gauss"])
        changes = [i for i in range(len(sizes)) if i == 0 or sizes[i] != sizes[i - 1]]
        if len(changes) > 1:
            for i in changes:
                if i > 0:
                    ax.axvline(i + 0.5, color="0.7", linestyle=":", linewidth=0.9)
                ax.text(i + 1, 0.98, f"{sizes[i]}", transform=ax.get_xaxis_transform(), ha="center", va="top",
                        fontsize=7, color="0.3", bbox=dict(facecolor="white", edgecolor="none", pad=1.0))
        from matplotlib.ticker import MaxNLocator
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("EM iteration" + (" (at the top: number of Gaussians)" if len(changes) > 1 else ""))
        ax.set_ylabel(h["quantity"], fontsize=8)
        ax.set_title(str(label), fontsize=10)
        ax.grid(True, color="0.88", linewidth=0.6)
        if np.isfinite(h["heldout"]).any():
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return maybe_save(fig, out_png)
