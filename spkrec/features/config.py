"""Kaldi-style option files (``conf/mfcc.conf``) and the feature types ``compute-feats`` knows.

An option file holds one ``--name=value`` per line (``--name`` alone means ``true``); ``#`` starts a
comment; blank lines are ignored. Names have dashes turned into underscores and Kaldi names are
mapped onto spkrec's (``--frame-length`` -> ``frame_length_ms``, ``--preemphasis-coefficient`` ->
``preemph``, ``--window-type`` -> ``window``); values become bool/int/float/str.
"""
import importlib
import inspect
import os

from spkrec.errors import SpkrecError
from spkrec.io.text import utf8_lines

# feature type (CLI name) -> function name in spkrec.features
FEATURE_TYPES = {"mfcc": "mfcc", "fbank": "fbank", "plp": "plp", "rasta-plp": "rasta_plp",
                 "lpc": "lpc", "lpcc": "lpcc", "lfcc": "lfcc", "cqcc": "cqcc"}

# Kaldi option name (underscored) -> spkrec keyword
KALDI_ALIASES = {
    "frame_length": "frame_length_ms", "frame_shift": "frame_shift_ms",
    "preemphasis_coefficient": "preemph", "window_type": "window",
    "vad_energy_threshold": "energy_threshold", "vad_energy_mean_scale": "energy_mean_scale",
    "vad_frames_context": "frames_context", "vad_proportion_threshold": "proportion_threshold",
}


def parse_value(text):
    """``"true"/"false"`` -> bool, then int, then float, else the string itself."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def option_name(name):
    """Kaldi option name (``num-ceps`` or ``--num-ceps``) -> spkrec keyword (``num_ceps``)."""
    key = name.lstrip("-").replace("-", "_")
    return KALDI_ALIASES.get(key, key)


def parse_option(token, where):
    """Parse one ``--name=value`` / ``--name`` token into ``(keyword, value)``; ``where`` names it in errors."""
    if not token.startswith("--") or len(token) < 3 or token[2] in "=-":
        raise SpkrecError(f"{where}: expected an option like --num-ceps=20, got {token!r}; "
                          "fix or remove this line")
    name, sep, value = token[2:].partition("=")
    if not name or any(c.isspace() for c in name):
        raise SpkrecError(f"{where}: bad option name in {token!r}; options look like --num-ceps=20")
    return option_name(name), (parse_value(value.strip()) if sep else True)


def read_config(path):
    """Read a Kaldi-style option file into ``{keyword: value}`` (later lines override earlier ones)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise SpkrecError(f"{path}: config file not found; check the --config path")
    options = {}
    for lineno, line in utf8_lines(path):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        key, value = parse_option(text, f"{path}:{lineno}")
        options[key] = value
    return options


def feature_function(feat_type):
    """The ``spkrec.features`` function computing ``feat_type`` (a key of :data:`FEATURE_TYPES`)."""
    if feat_type not in FEATURE_TYPES:
        raise SpkrecError(f"unknown feature type {feat_type!r}; use one of {', '.join(FEATURE_TYPES)}")
    return getattr(importlib.import_module("spkrec.features"), FEATURE_TYPES[feat_type])


def check_options(func, options, what):
    """Raise :class:`SpkrecError` for keywords ``func(signal, rate, **options)`` does not accept."""
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = {n for n, p in params.items()
                if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)} - {"signal", "sample_rate", "feats"}
    unknown = sorted(set(options) - accepted)
    if unknown:
        names = ", ".join("--" + u.replace("_", "-") for u in unknown)
        raise SpkrecError(f"{what} does not take option(s) {names}; its options are: "
                          + ", ".join("--" + a.replace("_", "-") for a in sorted(accepted)))
