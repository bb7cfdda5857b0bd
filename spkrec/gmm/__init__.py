"""GMM-UBM speaker recognition: diagonal UBM by EM, MAP adaptation, LLR scoring, supervectors.

Public API::

    DiagGMM(n_components=256, n_iter=20, init="split", ..., parallel=None)   .fit(X_or_frame_source)
    GmmStats, PackedGMM                                       Baum-Welch statistics (N, F, S), E-step matrices
                                                              (spkrec.gmm.core: the mixture core)
    map_adapt(ubm, X, relevance_factor=16.0, adapt="m") -> DiagGMM
    map_adapt_stats(ubm, N, F, S=None, relevance_factor=16.0, adapt="m") -> SpeakerGMMs (batched)
    enroll_speakers(ubm, loader, spk2utt, ...) -> SpeakerGMMs
    SpeakerGMMs                                               many adapted models in one .npz
    gmm_ubm_llr(speaker, ubm, X, top_c=5) -> float
    score_trials(ubm, models, loader, trials, top_c=5, config=SERIAL) -> (n,) float64
    supervector(adapted, ubm) -> (C*D,);  extract_supervectors(ubm, loader, utt_ids, ...) -> (n, C*D)
"""
from spkrec._lazy import lazy_exports

_EXPORTS = {
    "DiagGMM": "diag", "GmmStats": "core", "PackedGMM": "core",
    "map_adapt": "map", "map_adapt_stats": "map", "SpeakerGMMs": "map", "enroll_speakers": "map",
    "utterance_stats": "map",
    "gmm_ubm_llr": "scoring", "score_trials": "scoring",
    "supervector": "supervectors", "extract_supervectors": "supervectors",
}
__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
