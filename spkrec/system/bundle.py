"""System bundles: a directory with ``system.json`` and copies of the model files, from audio to a
calibrated score; :func:`export_system` writes one, :func:`load_system` reads it (no pickle).

``system.json`` (format :data:`FORMAT_VERSION`)::

    {"format": "spkrec-system", "format_version": 1, "kind": "gmm_ubm" | "ivector" | "rnn", "name": ...,
     "sample_rate": 16000,
     "features": {"type": "mfcc", "options": {...}},          # compute-feats options
     "vad": {"options": {...}} | null,                         # compute-vad options (null: no VAD)
     "postprocess": {"deltas_order": 2, "cmvn": "sliding", "cmvn_window": 300},
     "order": [...],                                           # the front end's steps, in order
     "models": {"ubm": "ubm.npz", ...},                        # files in the bundle
     "scoring": {...},                                         # per kind (MAP, top-C, back end, statistics)
     "calibration": {"calibrated": bool, "scale": a, "offset": b, "target_prior": p | null, "source": ...},
     "thresholds": {"target_prior": p, "bayes": -logit(p), "eer": {...} | null, "default": "bayes" | "eer"},
     "fingerprint": sha256 of the front end, the enrolment settings and the model files enrolment uses}

Calibrated LLR = ``scale * score + offset`` (uncalibrated: 1 and 0, and the "LLR" is the raw score).
"""
import hashlib
import json
import os
import shutil
import tempfile

import numpy as np

from spkrec.errors import SpkrecError

FORMAT = "spkrec-system"
FORMAT_VERSION = 1
SYSTEM_FILE = "system.json"
POST_DEFAULTS = {"deltas_order": 2, "cmvn": "sliding", "cmvn_window": 300}
ORDER = ["read audio, average channels, resample to sample_rate", "features", "VAD decisions on the raw features",
         "deltas", "CMVN", "keep voiced frames"]
# what each kind's enrolment depends on (besides the front end): these enter the fingerprint
_ENROL_MODELS = {"gmm_ubm": ("ubm",), "ivector": ("ubm", "extractor"), "rnn": ("encoder",)}
_ENROL_SCORING = {"gmm_ubm": ("relevance_factor", "adapt"), "ivector": ("stats",), "rnn": ()}
KINDS = tuple(_ENROL_MODELS)


# ----------------------------------------------------------------------------------------- helpers
def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(path, cfg):
    """The fingerprint of the bundle at ``path`` with config ``cfg`` (hashes the model files)."""
    kind = cfg["kind"]
    what = {"kind": kind, "sample_rate": cfg["sample_rate"], "features": cfg["features"], "vad": cfg["vad"],
            "postprocess": cfg["postprocess"],
            "scoring": {k: cfg["scoring"][k] for k in _ENROL_SCORING[kind]},
            "models": {role: _sha256(os.path.join(path, cfg["models"][role])) for role in _ENROL_MODELS[kind]}}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode("utf-8")).hexdigest()


def read_calibration(path):
    """``(scale, offset, target_prior)`` of a ``LinearCalibration`` .npz (its meta keys of those names)."""
    from spkrec.io.atomic import load_npz
    _, meta = load_npz(path, "LinearCalibration")
    try:
        scale, offset = float(meta["scale"]), float(meta["offset"])
        prior = meta.get("target_prior")
        prior = None if prior is None else float(prior)
    except (KeyError, TypeError, ValueError):
        raise SpkrecError(f"{path}: a LinearCalibration needs numeric meta 'scale' and 'offset'; "
                          "train it again") from None
    if not (np.isfinite(scale) and np.isfinite(offset)) or scale <= 0:
        raise SpkrecError(f"{path}: calibration scale {scale} / offset {offset} unusable (scale must be "
                          "positive and finite); train it again on more trials")
    return scale, offset, prior


def _eer_threshold(scores, trials, scale, offset):
    from spkrec.eval.metrics import eer
    from spkrec.io.scores import scores_for_trials
    s, labels = scores_for_trials(scores, trials)
    if labels.all() or not labels.any():
        raise SpkrecError(f"{trials}: needs both target and nontarget trials to measure the EER threshold")
    value, threshold = eer(s, labels)
    return {"score": threshold, "llr": scale * threshold + offset, "eer": value, "num_trials": int(len(s)),
            "scores": os.fspath(scores), "trials": os.fspath(trials)}


def _bayes(prior):
    from spkrec.eval.metrics import bayes_threshold
    return bayes_threshold(prior) + 0.0  # no -0.0


def _model_meta(path, kind):
    from spkrec.io.atomic import load_npz
    return load_npz(path, kind)[1]


def _model_path(path, default_name, what, option):
    if path is None:
        raise SpkrecError(f"{what} needs {option}")
    path = os.fspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, default_name)
    if not os.path.isfile(path):
        raise SpkrecError(f"{path}: model file not found; train it first or fix {option}")
    return path


# ----------------------------------------------------------------------------------------- export
def export_system(out, kind, *, ubm=None, extractor=None, rnn=None, backend=None, scoring=None, feat_type="mfcc",
                  feat_options=None, sample_rate=16000, vad_options=None, relevance_factor=16.0, adapt="m",
                  top_c=5, calibration=None, target_prior=None, eer_from=None, name=None):
    """Write a system bundle to directory ``out`` (replacing one there); returns the loaded :class:`System`.

    kind : ``"gmm_ubm"`` (``ubm``: the diagonal UBM file or dir; ``relevance_factor``, ``adapt``, ``top_c``)
        or ``"ivector"`` (``extractor``: the train-ivector-extractor dir, or extractor.npz beside its
        final.ubm.npz; ``scoring`` ``"plda"`` with a PLDA ``backend`` .npz, or ``"cosine"`` with an optional
        ``backend`` whose transforms are applied first) or ``"rnn"`` (``rnn``: the train-rnn dir or its
        final.pt, needs PyTorch; ``scoring`` and ``backend`` as for i-vectors).
    feat_type, feat_options : the ``compute-feats`` feature type and options (``sample_frequency`` among
        them sets ``sample_rate``). vad_options : the ``compute-vad`` options, or None for no VAD.
        Deltas and CMVN are those stored with the models.
    calibration : a ``LinearCalibration`` .npz (meta scale, offset, target_prior), or None (uncalibrated).
    target_prior : prior of the Bayes threshold (default: the calibration's, else 0.5).
    eer_from : ``(scores, trials)`` files: the EER threshold measured on them (raw scores of this system).
    """
    if kind not in KINDS:
        raise SpkrecError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    feat_options = dict(feat_options or {})
    if "sample_frequency" in feat_options:
        sample_rate = feat_options.pop("sample_frequency")
    if not isinstance(sample_rate, (int, float)) or sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise SpkrecError(f"sample rate {sample_rate!r} is not a positive whole number of Hz")
    files = {}
    if kind == "gmm_ubm":
        files["ubm"] = _model_path(ubm, "final.ubm.npz", "--kind gmm_ubm", "--ubm")
        meta = _model_meta(files["ubm"], "DiagGMM")
        if top_c is not None and int(top_c) < 1:
            raise SpkrecError(f"--top-c {top_c} must be a positive number of Gaussians")
        from spkrec.gmm.map import ADAPT_MODES
        if adapt not in ADAPT_MODES:
            raise SpkrecError(f"unknown --adapt {adapt!r}; use one of {', '.join(ADAPT_MODES)}")
        score_cfg = {"relevance_factor": float(relevance_factor), "adapt": adapt,
                     "top_c": None if top_c is None else int(top_c)}
        from spkrec.system.engines import load_ubm
        want_dim = load_ubm(files["ubm"]).means_.shape[1]
    else:
        if kind == "ivector":
            files["extractor"] = _model_path(extractor, "extractor.npz", "--kind ivector", "--extractor")
            files["ubm"] = _model_path(os.path.dirname(files["extractor"]), "final.ubm.npz", "--kind ivector",
                                       "--extractor (a dir with extractor.npz and final.ubm.npz)")
            meta = _model_meta(files["extractor"], "IvectorExtractor")
            from spkrec.system.engines import load_ubm
            want_dim = load_ubm(files["ubm"]).means_.shape[1]
        else:
            files["encoder"] = _model_path(rnn, "final.pt", "--kind rnn", "--rnn")
            from spkrec.embeddings._torch import require_torch
            require_torch()
            from spkrec.embeddings.train import RNNEmbedder
            model = RNNEmbedder.load(files["encoder"])
            meta, want_dim = model.meta_, int(model.encoder_.input_dim)
        scoring = scoring or ("plda" if backend else "cosine")
        if scoring not in ("plda", "cosine"):
            raise SpkrecError(f"unknown --scoring {scoring!r}; use plda or cosine")
        if scoring == "plda" and backend is None:
            raise SpkrecError("--scoring plda needs --backend (a train-backend .npz ending in plda)")
        if backend is not None:
            files["backend"] = _model_path(backend, "plda.npz", "--backend", "--backend")
            from spkrec.backend.pipeline import BackendPipeline
            pipe = BackendPipeline.load(files["backend"])
            if scoring == "plda" and not pipe.is_plda:
                raise SpkrecError(f"{files['backend']}: this back end has no PLDA step; train it with "
                                  "--steps ...,plda or export with --scoring cosine")
        from spkrec.ivector.stats import stats_options
        stats = stats_options(meta.get("stats", {}))
        score_cfg = {"backend": scoring}
        if kind == "ivector":
            score_cfg["stats"] = stats
    stored = meta.get("features") if isinstance(meta.get("features"), dict) else {}
    post = {k: stored.get(k, d) for k, d in POST_DEFAULTS.items()}

    scale, offset, cal_prior = (1.0, 0.0, None) if calibration is None else read_calibration(calibration)
    prior = float(target_prior if target_prior is not None else cal_prior if cal_prior is not None else 0.5)
    thresholds = {"target_prior": prior, "bayes": _bayes(prior), "eer": None}
    if eer_from is not None:
        thresholds["eer"] = _eer_threshold(eer_from[0], eer_from[1], scale, offset)
    thresholds["default"] = "eer" if calibration is None and thresholds["eer"] else "bayes"
    cfg = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
           "name": name or os.path.basename(os.path.normpath(os.fspath(out))),
           "sample_rate": int(sample_rate),
           "features": {"type": feat_type, "options": feat_options},
           "vad": None if vad_options is None else {"options": dict(vad_options)},
           "postprocess": post, "order": ORDER,
           "models": {role: role + os.path.splitext(src)[1] for role, src in files.items()}, "scoring": score_cfg,
           "calibration": {"calibrated": calibration is not None, "scale": scale, "offset": offset,
                           "target_prior": cal_prior,
                           "source": None if calibration is None else os.fspath(calibration)},
           "thresholds": thresholds}
    from spkrec import __version__
    cfg["created_by"] = f"spkrec {__version__}"
    _check_front_end(cfg, want_dim)

    out = os.path.abspath(os.fspath(out))
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", dir=parent)
    try:
        for role, src in files.items():
            shutil.copyfile(src, os.path.join(tmp, cfg["models"][role]))
        cfg["fingerprint"] = fingerprint(tmp, cfg)
        with open(os.path.join(tmp, SYSTEM_FILE), "w", encoding="utf-8") as f:
            json.dump(cfg, f, indent=1)
            f.write("\n")
        old = None
        if os.path.exists(out):
            if not os.path.isfile(os.path.join(out, SYSTEM_FILE)) and os.listdir(out):
                raise SpkrecError(f"{out}: exists and is not a system bundle; choose another --out")
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old.", dir=parent)
            os.replace(out, os.path.join(old, "x"))
        os.replace(tmp, out)
        if old:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_system(out)


def _check_front_end(cfg, want):
    """The feature options must run and give the models' dimension (fails before anything is written)."""
    from spkrec.features.config import check_options, feature_function
    from spkrec.system.frontend import FrontEnd
    feat = cfg["features"]
    check_options(feature_function(feat["type"]), feat["options"], f"--feat-type {feat['type']}")
    if cfg["vad"] is not None:
        import inspect

        from spkrec.features.vad import vad_energy
        accepted = set(inspect.signature(vad_energy).parameters) - {"feats"}
        unknown = sorted(set(cfg["vad"]["options"]) - accepted)
        if unknown:
            raise SpkrecError(f"unknown VAD option(s) {', '.join(unknown)}; use the compute-vad "
                              "config (conf/vad.conf)")
    try:
        dim = FrontEnd(cfg["sample_rate"], feat["type"], feat["options"],
                       None if cfg["vad"] is None else cfg["vad"]["options"], cfg["postprocess"]).probe_dim()
    except (TypeError, ValueError) as err:
        raise SpkrecError(f"feature options do not work ({err}); fix --feat-config") from None
    if dim != want:
        raise SpkrecError(f"the features give {dim} dimensions after deltas, the models expect "
                          f"{want}; pass the --feat-config (and options) the models were trained with")


# ----------------------------------------------------------------------------------------- load
def load_system(path):
    """Load a system bundle (a directory with ``system.json``, or that file) -> :class:`System`."""
    from spkrec.system.api import System
    path = os.fspath(path)
    if os.path.basename(path) == SYSTEM_FILE:
        path = os.path.dirname(path) or "."
    file = os.path.join(path, SYSTEM_FILE)
    if not os.path.isfile(file):
        raise SpkrecError(f"{path}: not a system bundle (no {SYSTEM_FILE}); make one with `spkrec export-system`")
    try:
        with open(file, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as exc:
        raise SpkrecError(f"{file}: not readable JSON ({exc}); export the system again") from None
    if not isinstance(cfg, dict) or cfg.get("format") != FORMAT:
        raise SpkrecError(f"{file}: not a spkrec system description; export the system again")
    version = cfg.get("format_version")
    if not isinstance(version, int) or version < FORMAT_VERSION:
        raise SpkrecError(f"{file}: system bundle format {version} is older than this spkrec's "
                          f"({FORMAT_VERSION}); export it again with `spkrec export-system`")
    if version > FORMAT_VERSION:
        raise SpkrecError(f"{file}: system bundle format {version} is newer than this spkrec's "
                          f"({FORMAT_VERSION}); upgrade spkrec")
    try:
        for role, name in cfg["models"].items():
            if not os.path.isfile(os.path.join(path, name)):
                raise SpkrecError(f"{os.path.join(path, name)}: model file of the bundle is missing; "
                                  "export the system again")
        actual = fingerprint(path, cfg)
    except KeyError as exc:
        raise SpkrecError(f"{file}: entry {exc} missing; export the system again") from None
    if actual != cfg.get("fingerprint"):
        raise SpkrecError(f"{path}: model files or settings changed since export (fingerprint mismatch); "
                          "export the system again")
    return System(path, cfg)
