"""Speaker diarization (who spoke when) with the toolkit's classical parts.

``frontend``: a bundle's frames with time stamps and VAD decisions; ``segment``: speech regions and
uniform windows; ``cluster``: AHC (threshold or number of speakers) and spectral clustering of a score
matrix, cluster merging by PLDA LLR; ``vbx``: Bayesian HMM clustering of the windows (VBx); ``train``: a back end trained on windows;
``resegment``: frame-level GMM resegmentation (per-cluster MAP-adapted GMMs, Viterbi with a
switch penalty); ``pipeline``: :func:`diarize` one file -> turns; ``simulate``: conversations built from
single-speaker utterances with reference turns (simulated development data).
"""
from spkrec.diarization.cluster import absorb_small, ahc, cluster_llr, estimate_num_clusters, merge_by_llr, spectral
from spkrec.diarization.pipeline import DiarizationConfig, diarize, window_scores, window_vectors

__all__ = ["ahc", "absorb_small", "cluster_llr", "merge_by_llr", "spectral", "estimate_num_clusters", "diarize", "DiarizationConfig",
           "window_vectors", "window_scores"]
