"""Metrics and plots on scores only: pure functions of ``(scores, labels)`` arrays or score matrices.

``metrics``: DET curve, EER (exact interpolated by default, or ROCCH), minDCF, actual DCF, Cllr,
minCllr, ROC-AUC. ``identification``: score matrix, top-k accuracy, confusion matrix. ``plots``: DET
curves on probit axes, confusion matrix, score histograms (matplotlib Agg, nothing displayed).
``report``: the Markdown results table. Names are imported lazily (matplotlib only when plotting).
"""
import importlib

_EXPORTS = {
    "det_curve": "metrics", "eer": "metrics", "rocch": "metrics", "min_dcf": "metrics", "act_dcf": "metrics",
    "bayes_threshold": "metrics", "cllr": "metrics", "min_cllr": "metrics", "calibrate_pav": "metrics",
    "pav": "metrics", "roc_auc": "metrics", "verification_metrics": "metrics",
    "identification_scores": "identification", "top_k_accuracy": "identification",
    "confusion_matrix": "identification", "true_rank": "identification",
    "plot_det": "plots", "plot_confusion": "plots", "plot_score_histograms": "plots", "save_figure": "plots",
    "results_table": "report",
    "cm_eer": "spoof", "min_tdcf": "spoof", "sasv_eers": "spoof",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"spkrec.eval.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'spkrec.eval' has no attribute {name!r}")
