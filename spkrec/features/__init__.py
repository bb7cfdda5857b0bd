"""Pure signal-processing functions: ``f(signal, sample_rate, **options) -> (num_frames, dim) float32``.

Option names follow Kaldi's (``frame_length_ms``, ``frame_shift_ms``, ``dither``, ``preemph``,
``num_mel_bins``, ``num_ceps``, ``low_freq``, ``high_freq``, ``cepstral_lifter``, ``snip_edges``).
Names are imported lazily so that ``import spkrec.features`` stays cheap.
"""
import importlib

_EXPORTS = {
    "frame_signal": "framing", "fbank": "mel", "mfcc": "mel", "mel_filterbank": "mel",
    "lpc": "linpred", "lpcc": "linpred", "levinson_durbin": "linpred",
    "plp": "perceptual", "rasta_plp": "perceptual",
    "lfcc": "spoof", "cqcc": "spoof", "linear_filterbank": "spoof",
    "deltas": "dynamic", "vad_energy": "vad",
    "cmvn": "norm", "sliding_cmvn": "norm", "feature_warping": "norm",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"spkrec.features.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value  # cache: later look-ups skip __getattr__
        return value
    raise AttributeError(f"module 'spkrec.features' has no attribute {name!r}")
