"""Markdown results table: one row per system."""
import math

DASH = "–"


def _fmt(value, spec, scale=1.0):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return DASH
    return format(value * scale, spec)


def results_table(rows, k=5, identification=None):
    """Markdown table ``| system | EER % | minDCF | actDCF | Cllr | minCllr | [AUC |] top-1 % | top-k % |``.

    Parameters
    ----------
    rows : list of dict
        Keys ``system`` (str) and any of ``eer``, ``min_dcf``, ``act_dcf``, ``cllr``, ``min_cllr``, ``auc``
        (ROC area; the AUC column is shown when any row has it), ``top1``, ``topk``; ``eer`` and the accuracies are fractions (printed as %); a missing or ``None`` value
        prints as "–".
    k : int
        The ``k`` of the ``topk`` column's heading.
    identification : bool, optional
        Show the top-1/top-k columns; default: when any row has ``top1`` or ``topk``.

    Returns the table as a string ending in a newline.
    """
    if identification is None:
        identification = any(r.get("top1") is not None or r.get("topk") is not None for r in rows)
    with_auc = any(r.get("auc") is not None for r in rows)
    header = ["system", "EER %", "minDCF", "actDCF", "Cllr", "minCllr"] + (["AUC"] if with_auc else [])
    header += ["top-1 %", f"top-{k} %"] if identification else []
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for r in rows:
        cells = [str(r.get("system", "")).replace("|", "/"),
                 _fmt(r.get("eer"), ".2f", 100.0), _fmt(r.get("min_dcf"), ".4f"), _fmt(r.get("act_dcf"), ".4f"),
                 _fmt(r.get("cllr"), ".3f"), _fmt(r.get("min_cllr"), ".3f")]
        cells += [_fmt(r.get("auc"), ".4f")] if with_auc else []
        if identification:
            cells += [_fmt(r.get("top1"), ".2f", 100.0), _fmt(r.get("topk"), ".2f", 100.0)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
