"""GMM mean supervectors for the KL-divergence kernel (Campbell, Sturim & Reynolds 2006).

The supervector of an adapted model stacks ``sqrt(w_c) * mu_c / sigma_c`` over Gaussians, with the
UBM's weights and standard deviations, so that a dot product of two supervectors is the linear
KL-divergence kernel ``sum_c w_c mu_a,c' Sigma_c^-1 mu_b,c``.
"""
import numpy as np

from spkrec.gmm.core import accumulate
from spkrec.gmm.map import map_means
from spkrec.parallel import SERIAL, map_chunks


def supervector_scale(ubm):
    """(C, D) ``sqrt(w_c) / sigma_c`` of the UBM."""
    return np.sqrt(ubm.weights_)[:, None] / np.sqrt(ubm.variances_)


def supervector(adapted, ubm):
    """(C*D,) float64 supervector of one adapted model (a :class:`DiagGMM`)."""
    return (supervector_scale(ubm) * adapted.means_).ravel()


def _supervector_block(utts, loader, packed, ubm_means, scale, relevance_factor):
    out = np.empty((len(utts), scale.size), dtype=np.float32)
    for i, utt in enumerate(utts):
        stats = accumulate(packed, np.asarray(loader(utt)), second_order=False)
        means, _ = map_means(ubm_means, stats.occupancy, stats.first, relevance_factor)
        out[i] = (means * scale).ravel()
    return out


def extract_supervectors(ubm, loader, utt_ids, relevance_factor=16.0, config=SERIAL):
    """(n, C*D) float32 supervectors of the MAP-adapted (means only) model of each utterance."""
    utt_ids = list(utt_ids)
    if not utt_ids:
        return np.zeros((0, ubm.means_.size), dtype=np.float32)
    parts = map_chunks(_supervector_block, utt_ids, config, desc="supervectors", loader=loader,
                       packed=ubm.packed(), ubm_means=ubm.means_, scale=supervector_scale(ubm),
                       relevance_factor=float(relevance_factor))
    return np.concatenate(parts)
