"""i-vectors: full-covariance UBM, Baum-Welch statistics, total-variability (T-matrix) training, extraction.

Public API::

    FullGMM(n_iter=4, num_gselect=20, ..., parallel=None).fit(X_or_frame_source, diag_ubm=ubm, utt_ids=None)
    FullGMM.from_diag(diag_ubm); .log_likelihood_components(X); .save(path); FullGMM.load(path)
    utterance_stats(ubm, X, num_gselect=20, min_post=0.025) -> (N (C,), F (C, D))
    accumulate_stats(ubm, loader, utt_ids, config=SERIAL, num_gselect=20, min_post=0.025, second_order=False)
        -> (N (n, C), F (n, C, D)) [, S (C, D, D) or (C, D) summed]
    pool_stats(N, F, keys, groups) -> (group ids, N, F)
    IvectorExtractor(n_components=400, n_iter=10, min_divergence=True, prior_offset=100.0, random_state=0,
                     update_variances=False, variance_floor_factor=0.1, min_gauss_count=0.0, parallel=None)
        .fit(N, F, ubm, S=None, heldout=None); .kept_ubm(ubm); .overfitting_warning()
        or .fit(StatsArchive, ubm=ubm, heldout=StatsArchive); .transform(N, F, return_covariance=False)
    write_stats(ubm, loader, utt_ids, out_dir, config, groups=None, batch_size=64, ..., second_order=False)
        -> StatsArchive (files on disk)
    StatsArchive(paths) / StatsArchive.from_dir(dir): .num_utts, .iter_batches(batch_size), .load(k), .second_order()
    extract_ivectors(extractor, ubm, loader, utt_ids, config, ...) -> (n, R) i-vectors, streamed
    choose_ivector_size(loader, utt2spk, num_gauss=(16, 32, 64), tv_dims=(50, 100), n_folds=3, ...)
        -> (best, rows): the grid point with the best held-out minCllr (or EER) over folds of speakers
"""
from spkrec._lazy import lazy_exports

_EXPORTS = {
    "FullGMM": "full_ubm", "gaussian_params": "full_ubm",
    "StatsComputer": "stats", "STATS_DEFAULTS": "stats", "stats_options": "stats", "utterance_stats": "stats", "accumulate_stats": "stats", "pool_stats": "stats",
    "IvectorExtractor": "extractor",
    "StatsArchive": "archive", "write_stats": "archive", "extract_ivectors": "streaming",
    "choose_ivector_size": "autosize", "speaker_folds": "autosize",
}
__getattr__, __all__ = lazy_exports(__name__, _EXPORTS)
