"""Energy-based voice-activity detection with Kaldi ``compute-vad-energy`` semantics."""
import numpy as np


def vad_energy(feats, energy_threshold=5.0, energy_mean_scale=0.5, frames_context=0,
               proportion_threshold=0.6, kaldi_frame_test=False):
    """Return a ``(T,)`` float32 vector of 1.0 (voiced) / 0.0 (unvoiced) decisions.

    Column 0 of ``feats`` must be the log energy (MFCC with energy, or c0). The threshold is
    ``energy_threshold + energy_mean_scale * mean(log_energy)``; frame ``t`` is voiced when at least
    ``proportion_threshold`` of the frames ``t-frames_context .. t+frames_context`` that exist have a
    log energy above the threshold (Kaldi's ``--vad-energy-threshold``, ``--vad-energy-mean-scale``,
    ``--vad-frames-context``, ``--vad-proportion-threshold``). Arithmetic follows Kaldi's float32.

    ``kaldi_frame_test=True`` reproduces upstream Kaldi's code literally: its context loop tests
    frame ``t`` itself instead of each neighbour ``t2``, so the context has no effect there. The
    default applies the documented rule (neighbours vote); with ``frames_context=0`` both agree.
    """
    feats = np.asarray(feats, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[1] < 1:
        raise ValueError(f"vad_energy expects a (frames, dims) matrix, got shape {feats.shape}")
    if frames_context < 0:
        raise ValueError(f"frames_context must be >= 0, got {frames_context}")
    if not 0.0 < proportion_threshold < 1.0:
        raise ValueError(f"proportion_threshold must be in (0, 1), got {proportion_threshold}")
    if energy_mean_scale < 0.0:
        raise ValueError(f"energy_mean_scale must be >= 0, got {energy_mean_scale}")
    T = feats.shape[0]
    if T == 0:
        return np.zeros(0, dtype=np.float32)
    log_energy = feats[:, 0]
    threshold = np.float32(energy_threshold)
    if energy_mean_scale != 0.0:
        threshold = np.float32(threshold + np.float32(energy_mean_scale)
                               * np.float32(np.sum(log_energy, dtype=np.float64) / T))
    above = (log_energy > threshold).astype(np.int64)
    c = int(frames_context)
    t = np.arange(T)
    lo, hi = np.maximum(t - c, 0), np.minimum(t + c + 1, T)  # existing frames of each window
    den = hi - lo
    if kaldi_frame_test:
        num = den * above
    else:
        csum = np.concatenate(([0], np.cumsum(above)))
        num = csum[hi] - csum[lo]
    voiced = num.astype(np.float32) >= den.astype(np.float32) * np.float32(proportion_threshold)
    return voiced.astype(np.float32)
