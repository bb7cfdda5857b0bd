"""A system bundle's front end with time stamps: every frame, normalised as the models expect, and the
energy VAD decision of each (the bundle's ``System.frames`` keeps only the voiced frames, without times).
Same steps and order as :class:`spkrec.system.frontend.FrontEnd`: raw features, VAD on them, deltas and
CMVN over all frames."""
import os

import numpy as np

from spkrec.errors import SpkrecError


def timed_frames(system, audio, name=None):
    """-> ``(X (T, dim) float32, voiced (T,) bool, shift_s, duration_s)`` for a path or ``(samples, rate)``.

    Frame t covers about ``[t * shift_s, t * shift_s + frame_length]``; ``T`` may be 0 for audio shorter
    than one frame (then X is (0, dim))."""
    from spkrec.features.config import feature_function
    from spkrec.features.pipeline import FeatureLoader
    from spkrec.features.vad import vad_energy
    fe = system.frontend
    signal, name = fe.signal(audio, name)
    duration = signal.size / fe.sample_rate
    shift = float(fe.feat_options.get("frame_shift_ms", 10.0)) / 1000.0
    if duration < fe.frame_length_s:
        return np.zeros((0, 1), np.float32), np.zeros(0, bool), shift, duration
    raw = np.asarray(feature_function(fe.feat_type)(signal, fe.sample_rate, **fe.feat_options), np.float32)
    if raw.shape[0] == 0:
        return np.zeros((0, 1), np.float32), np.zeros(0, bool), shift, duration
    X = np.asarray(FeatureLoader(os.devnull, None, **fe.post).normalise(raw), np.float32)  # deltas, CMVN
    if fe.vad_options is None:
        voiced = np.ones(len(X), bool)
    else:
        voiced = np.asarray(vad_energy(raw, **fe.vad_options) > 0.5)
    if len(voiced) != len(X):
        raise SpkrecError(f"{name}: VAD gave {len(voiced)} decisions for {len(X)} frames; re-export the system")
    return X, voiced, shift, duration
