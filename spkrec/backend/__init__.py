"""Back ends for fixed-length speaker vectors (i-vectors, supervectors, neural embeddings).

Transforms (``Center``, ``Whiten``, ``LDA``, ``WCCN``, ``LengthNorm``), PLDA (``TwoCovPLDA``,
``SimplifiedPLDA``), cosine scoring, score normalisation, the GMM-supervector SVM, score calibration and fusion
(``LinearCalibration``, ``LinearFusion``), combined by
``BackendPipeline``. Names are imported lazily.
"""
from spkrec._lazy import lazy_exports

_EXPORTS = {
    "Center": "transforms", "Whiten": "transforms", "LDA": "transforms", "WCCN": "transforms",
    "LengthNorm": "transforms",
    "TwoCovPLDA": "plda", "SimplifiedPLDA": "plda",
    "cosine_scores": "cosine", "CosineScorer": "cosine",
    "znorm": "score_norm", "tnorm": "score_norm", "snorm": "score_norm", "adaptive_snorm": "score_norm",
    "cohort_stats": "score_norm",
    "GSVSVM": "svm",
    "LinearCalibration": "calibration", "LinearFusion": "calibration",
    "BackendPipeline": "pipeline", "make_pipeline": "pipeline",
    "group_means": "base",
}
__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
