"""Streaming i-vector extraction: statistics and i-vectors per batch of utterances, in the workers.

Each worker computes the statistics of ``batch_size`` utterances and at once their i-vectors, so only
i-vectors ``(n, R)`` float32 come back and no process holds the statistics of the corpus. The batches
are those of ``IvectorExtractor.transform`` on the full arrays (``batch_size`` consecutive utterances
from the start), so the i-vectors are bit-identical to ``accumulate_stats`` + ``transform``, for any ``nj``.
"""
import numpy as np
from threadpoolctl import threadpool_limits

from spkrec.errors import SpkrecError
from spkrec.io.frames import frame_source
from spkrec.ivector.posterior import MAX_CHUNKS, extract_batches
from spkrec.ivector.stats import StatsComputer, stats_of
from spkrec.parallel import SERIAL, map_chunks


def _extract_utts(batches, loader, computer, proj, mu0):
    """Worker: i-vectors ``(n, R)`` float32 of lists of utterance ids (one list = one batch)."""
    with threadpool_limits(limits=1, user_api="blas"):
        stats = (stats_of(utts, loader, computer) for utts in batches)  # one batch in memory at a time
        return np.concatenate([ivectors for ivectors, _ in extract_batches(stats, proj, mu0, False)])


def extract_ivectors(extractor, ubm, loader, utt_ids=None, config=SERIAL, num_gselect=20, min_post=0.025,
                     posterior_scale=1.0, dtype=np.float32):
    """i-vectors ``(n, R)`` float32 of ``utt_ids``, streamed from ``loader`` (statistics never gathered).

    extractor : fitted IvectorExtractor (its ``batch_size`` sets the batches).
    ubm : the UBM the extractor was trained with; loader, utt_ids, num_gselect, min_post,
        posterior_scale : as for ``accumulate_stats``; dtype : as for ``IvectorExtractor.transform``.
    """
    extractor._check_fitted()
    loader, utt_ids = frame_source(loader, utt_ids)
    computer = StatsComputer(ubm, num_gselect, min_post, posterior_scale, config)
    C, D, R = extractor.T_.shape
    if (computer.num_gauss, computer.dim) != (C, D):
        raise SpkrecError(f"UBM of {computer.num_gauss} Gaussians, dim {computer.dim} does not match the "
                          f"extractor ({C}, {D}); use the final.ubm.npz saved with the extractor")
    if not utt_ids:
        return np.zeros((0, R), np.float32)
    bs = max(1, int(extractor.batch_size))
    batches = [utt_ids[i:i + bs] for i in range(0, len(utt_ids), bs)]
    parts = map_chunks(_extract_utts, batches, config, desc="i-vector extraction", max_chunks=MAX_CHUNKS,
                       loader=loader, computer=computer, proj=extractor._projection(dtype, config=config),
                       mu0=extractor.mu0_)
    return np.concatenate(parts)
