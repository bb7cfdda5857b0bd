"""Audio file -> model-ready frames, in the order the recipes use.

1. read the file (any format :func:`spkrec.io.audio.read_audio` reads; channels averaged) and resample
   it to the system's rate with ``scipy.signal.resample_poly``;
2. raw features (``compute-feats``: the feature function with the system's options);
3. energy VAD decisions on the raw features (``compute-vad``: column 0 is the log energy);
4. deltas, then CMVN over all frames (:class:`~spkrec.features.pipeline.FeatureLoader`);
5. keep the voiced frames.
"""
import os

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.io.audio import INT16_SCALE, read_audio, resample


class FrontEnd:
    """``frontend(audio) -> (frames, dim)`` float32 for one system.

    sample_rate : Hz the models were trained at. feat_type : a ``compute-feats --feat-type``.
    feat_options : keywords of the feature function (as ``compute-feats`` passed them).
    vad_options : keywords of :func:`spkrec.features.vad_energy`, or None (no VAD: all frames).
    post : ``deltas_order``, ``cmvn``, ``cmvn_window`` (stored with the models by ``train-ubm``).
    vad_features : ``{"type", "options"}`` of the raw features the VAD decides on when they are not the
        model's (the recipes' CNN: log-mel banks, VAD on the MFCC front end's log energy); None: the model's.
    """

    def __init__(self, sample_rate, feat_type, feat_options, vad_options, post, vad_features=None):
        from spkrec.features.config import feature_function
        from spkrec.features.pipeline import FeatureLoader
        self.sample_rate = int(sample_rate)
        self.feat_type = feat_type
        self.feat_options = dict(feat_options)
        self.vad_options = None if vad_options is None else dict(vad_options)
        self.post = dict(post)
        self._func = feature_function(feat_type)
        self.vad_features = None if vad_features is None else dict(vad_features)
        self._vad_func = None if vad_features is None else feature_function(vad_features["type"])
        # only its normalise() (deltas then CMVN) is used: no scp file is ever read
        self._norm = FeatureLoader(os.devnull, None, **self.post)
        self.frame_length_s = float(self.feat_options.get("frame_length_ms", 25.0)) / 1000.0

    def signal(self, audio, name=None):
        """``audio`` (a path, or ``(samples, rate)`` with samples (n,) or (n, channels) in the int16 range
        as ``read_audio`` returns them; int16 arrays are taken as they are) -> (n,) float32 at the system rate."""
        if isinstance(audio, (str, os.PathLike)):
            path = os.fspath(audio)
            name = name or path
            if os.path.isfile(path) and _num_frames_on_disk(path) == 0:
                raise SpkrecError(f"{name}: the audio file is empty (0 samples); choose a recording with speech")
            signal, rate = read_audio(path, target_rate=self.sample_rate, name=None)
            return signal, name
        try:
            samples, rate = audio
        except (TypeError, ValueError):
            raise SpkrecError(f"{name or 'audio'}: expected a file path or a (samples, rate) pair") from None
        samples = np.asarray(samples)
        name = name or "<array>"
        if samples.ndim == 2:
            samples = samples.mean(axis=1, dtype=np.float64)
        if samples.ndim != 1 or samples.size == 0:
            raise SpkrecError(f"{name}: expected (samples,) or (samples, channels) audio, got {samples.shape}")
        if int(rate) <= 0:
            raise SpkrecError(f"{name}: sample rate {rate} is not a positive number of Hz")
        return resample(samples.astype(np.float32), int(rate), self.sample_rate), name

    def __call__(self, audio, name=None):
        """Voiced, normalised frames (T, dim) float32 of one recording; one-line errors for unusable input."""
        signal, name = self.signal(audio, name)
        seconds = signal.size / self.sample_rate
        if seconds < self.frame_length_s:
            raise SpkrecError(f"{name}: {seconds * 1000:.1f} ms of audio is shorter than one "
                              f"{self.frame_length_s * 1000:g} ms frame; use a recording of a second or more")
        raw = np.asarray(self._func(signal, self.sample_rate, **self.feat_options), dtype=np.float32)
        if raw.shape[0] == 0:
            raise SpkrecError(f"{name}: too short for one feature frame ({seconds:.3f} s); use a longer one")
        x = self._norm.normalise(raw)
        if self.vad_options is None:
            return x
        from spkrec.features.vad import vad_energy
        vad_raw = raw
        if self._vad_func is not None:
            vad_raw = np.asarray(self._vad_func(signal, self.sample_rate, **self.vad_features["options"]),
                                 dtype=np.float32)
            if len(vad_raw) != len(raw):
                raise SpkrecError(f"{name}: the VAD features have {len(vad_raw)} frames, the model's {len(raw)}; "
                                  "export the system with a VAD feature config of the same framing")
        voiced = vad_energy(vad_raw, **self.vad_options) > 0.5
        if not voiced.any():
            raise SpkrecError(f"{name}: no voiced frames in {seconds:.2f} s (silent or too quiet for the energy "
                              "VAD); use a recording with speech")
        return x[voiced]

    def probe_dim(self):
        """Output dimension, from 1 s of noise (checks the options before any file is read)."""
        rng = np.random.default_rng(0)
        raw = self._func(rng.normal(0, 1000.0, self.sample_rate).astype(np.float32), self.sample_rate,
                         **self.feat_options)
        return self._norm.normalise(np.asarray(raw, np.float32)).shape[1]


def _num_frames_on_disk(path):
    import soundfile as sf
    try:
        return sf.info(path).frames
    except Exception:  # not decodable here: read_audio gives the one-line error
        return -1


__all__ = ["FrontEnd", "INT16_SCALE"]
