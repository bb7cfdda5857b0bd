"""System bundles: a directory with ``system.json`` and copies of the model files, from audio to a
calibrated score; :func:`export_system` writes one, :func:`load_system` reads it (no pickle).

``system.json`` (format :data:`FORMAT_VERSION`)::

    {"format": "spkrec-system", "format_version": 1,
     "kind": "gmm_ubm" | "gsv_svm" | "ivector" | "rnn" | "cnn" | "hmm" | "fusion", "name": ...,
     "sample_rate": 16000,
     "features": {"type": "mfcc", "options": {...}},          # compute-feats options
     "vad": {"options": {...}} | null,                         # compute-vad options (null: no VAD)
     "postprocess": {"deltas_order": 2, "cmvn": "sliding", "cmvn_window": 300},
     "order": [...],                                           # the front end's steps, in order
     "models": {"ubm": "ubm.npz", ...},                        # files in the bundle
     "scoring": {...},                                         # per kind (MAP, top-C, back end, statistics)
     "score_norm": {"method": "z" | "t" | "s" | "as", "top_n": n, "cohort_speakers": S, "cohort_recordings": C}
                   | absent,                              # models: cohort_models.npz, cohort_tests.npz
     "components": [{"name", "dir", "fingerprint"}, ...], "fusion": {"weights": [...], "offset": b}
                   (fusion only: the component bundles under components/<name>/, one front end),
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
_ENROL_MODELS = {"gmm_ubm": ("ubm",), "gsv_svm": ("ubm", "background"), "ivector": ("ubm", "extractor"),
                 "rnn": ("encoder",), "cnn": ("encoder",), "hmm": ("hmms",), "fusion": ()}
_ENROL_SCORING = {"gmm_ubm": ("relevance_factor", "adapt"), "gsv_svm": ("relevance_factor", "C", "class_weight"),
                  "ivector": ("stats",), "rnn": (), "cnn": (), "hmm": ("relevance_factor", "adapt"), "fusion": ()}
KINDS = tuple(_ENROL_MODELS)
FRONT_END = ("sample_rate", "features", "vad", "postprocess")


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
    roles = _ENROL_MODELS[kind] + (("cohort_tests",) if cfg.get("score_norm") else ())
    what = {"kind": kind, "sample_rate": cfg["sample_rate"], "features": cfg["features"], "vad": cfg["vad"],
            "postprocess": cfg["postprocess"],
            "scoring": {k: cfg["scoring"][k] for k in _ENROL_SCORING[kind]},
            "models": {role: _sha256(os.path.join(path, cfg["models"][role])) for role in roles}}
    if kind == "fusion":
        what["components"] = [_component_fingerprint(path, c) for c in cfg["components"]]
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode("utf-8")).hexdigest()


def _component_fingerprint(path, component):
    """The recorded fingerprint of a fusion component (its bundle checks its own when loaded)."""
    file = os.path.join(path, component["dir"], SYSTEM_FILE)
    try:
        with open(file, encoding="utf-8") as f:
            return json.load(f)["fingerprint"]
    except (OSError, ValueError, KeyError):
        raise SpkrecError(f"{file}: component bundle missing or unreadable; export the fusion again") from None


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
                  top_c=5, background=None, svm_C=1.0, svm_class_weight="balanced", components=None,
                  fusion=None, snorm_cohort=None, snorm_method="s", snorm_top_n=200, calibration=None,
                  target_prior=None, eer_from=None, name=None, vad_features=None, hmm=None, hmm_method="forward",
                  hmm_background="all"):
    """Write a system bundle to directory ``out`` (replacing one there); returns the loaded :class:`System`.

    kind : ``"gmm_ubm"`` (``ubm``: the diagonal UBM file or dir; ``relevance_factor``, ``adapt``, ``top_c``),
        ``"gsv_svm"`` (``ubm``; ``background``: the background speakers' supervector scp of
        ``extract-supervectors``; ``relevance_factor``, ``svm_C``, ``svm_class_weight`` as ``train-svm``),
        ``"ivector"`` (``extractor``: the train-ivector-extractor dir, or extractor.npz beside its
        final.ubm.npz; ``scoring`` ``"plda"`` with a PLDA ``backend`` .npz, or ``"cosine"`` with an optional
        ``backend`` whose transforms are applied first), ``"rnn"`` / ``"cnn"`` (``rnn``: the train-rnn or
        train-cnn dir or its final.pt, needs PyTorch; ``scoring`` and ``backend`` as for i-vectors) or ``"fusion"``
        (``components``: bundle dirs with one front end; ``fusion``: the ``fuse --model-out`` .npz, its
        weights in the order of ``components``; the fused score is the LLR) or ``"hmm"`` (``hmm``: the
        train-hmm dir or its hmms.npz; ``relevance_factor``, ``adapt`` as enroll-hmm, ``hmm_method`` and
        ``hmm_background`` as score-hmm's --method and --background; a speaker enrols one of its phrases).
    feat_type, feat_options : the ``compute-feats`` feature type and options (``sample_frequency`` among
        them sets ``sample_rate``). vad_options : the ``compute-vad`` options, or None for no VAD.
    vad_features : ``(feat_type, options)`` of the features the VAD decided on when not the model's (the
        recipes' CNN on log-mel banks uses the MFCC front end's VAD).
        Deltas and CMVN are those stored with the models.
    snorm_cohort : a data dir with features (feats.scp, vad.scp) of cohort speakers: scores are then
        normalised (``snorm_method`` z, t, s or as with ``snorm_top_n``, as ``spkrec score-norm``) with the
        cohort speakers' models (all their recordings) and single recordings, both stored in the bundle.
    calibration : a ``LinearCalibration`` .npz (meta scale, offset, target_prior), or None (uncalibrated).
    target_prior : prior of the Bayes threshold (default: the calibration's, else 0.5).
    eer_from : ``(scores, trials)`` files: the EER threshold measured on them (raw scores of this system).
    """
    if kind not in KINDS:
        raise SpkrecError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    files, made, copies = {}, {}, {}   # role -> source file; role -> (npz kind, arrays); dir -> source dir
    extra = {}
    if kind == "fusion":
        front, files, score_cfg, extra, copies, fused = _fusion_parts(components, fusion)
        feat_type, feat_options, sample_rate = front["features"]["type"], front["features"]["options"], \
            front["sample_rate"]
        vad_options = None if front["vad"] is None else front["vad"]["options"]
        vf = None if front["vad"] is None else front["vad"].get("features")
        vad_features = None if vf is None else (vf["type"], vf["options"])
        post, want_dim = front["postprocess"], None
        calibration, cal_prior = None, fused.target_prior
    else:
        feat_options = dict(feat_options or {})
        if "sample_frequency" in feat_options:
            sample_rate = feat_options.pop("sample_frequency")
        if kind == "hmm":
            meta, score_cfg, want_dim = _hmm_parts(files, hmm, relevance_factor, adapt, hmm_method, hmm_background)
        else:
            meta, score_cfg, want_dim = _model_parts(kind, files, made, ubm, extractor, rnn, backend, scoring,
                                                     relevance_factor, adapt, top_c, background, svm_C,
                                                     svm_class_weight)
        stored = meta.get("features") if isinstance(meta.get("features"), dict) else {}
        post = {k: stored.get(k, d) for k, d in POST_DEFAULTS.items()}
    if not isinstance(sample_rate, (int, float)) or sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise SpkrecError(f"sample rate {sample_rate!r} is not a positive whole number of Hz")
    if snorm_cohort is not None:
        if kind == "fusion":
            raise SpkrecError("a fusion normalises through its components; export them with --snorm-cohort")
        if kind == "hmm":
            raise SpkrecError("--snorm-cohort: score normalisation of text-dependent (hmm) systems is not supported "
                              "(the recipe measured it worse); export without it")
        from spkrec.backend.score_norm import METHODS
        if snorm_method not in METHODS:
            raise SpkrecError(f"unknown --snorm-method {snorm_method!r}; use one of {', '.join(METHODS)}")
        if snorm_top_n is not None and int(snorm_top_n) < 1:
            raise SpkrecError(f"--snorm-top-n {snorm_top_n}: use a positive cohort size")

    if kind == "fusion":
        scale, offset = 1.0, 0.0
    else:
        scale, offset, cal_prior = (1.0, 0.0, None) if calibration is None else read_calibration(calibration)
    prior = float(target_prior if target_prior is not None else cal_prior if cal_prior is not None else 0.5)
    thresholds = {"target_prior": prior, "bayes": _bayes(prior), "eer": None}
    if eer_from is not None:
        thresholds["eer"] = _eer_threshold(eer_from[0], eer_from[1], scale, offset)
    calibrated = calibration is not None or kind == "fusion"
    thresholds["default"] = "eer" if not calibrated and thresholds["eer"] else "bayes"
    cfg = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": kind,
           "name": name or os.path.basename(os.path.normpath(os.fspath(out))),
           "sample_rate": int(sample_rate),
           "features": {"type": feat_type, "options": feat_options},
           "vad": None if vad_options is None else {"options": dict(vad_options)},
           "postprocess": post, "order": ORDER,
           "models": {role: role + (os.path.splitext(src)[1] if src else ".npz")
                      for role, src in {**files, **dict.fromkeys(made)}.items()},
           "scoring": score_cfg, **extra,
           "calibration": {"calibrated": calibrated, "scale": scale, "offset": offset,
                           "target_prior": cal_prior,
                           "source": os.fspath(fusion if kind == "fusion" else calibration)
                           if calibrated else None},
           "thresholds": thresholds}
    if vad_features is not None and cfg["vad"] is not None:
        vad_type, vad_feat_options = vad_features
        vad_feat_options = dict(vad_feat_options)
        vad_feat_options.pop("sample_frequency", None)
        cfg["vad"]["features"] = {"type": vad_type, "options": vad_feat_options}
    from spkrec import __version__
    cfg["created_by"] = f"spkrec {__version__}"
    if want_dim is not None:
        _check_front_end(cfg, want_dim)

    out = os.path.abspath(os.fspath(out))
    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.", dir=parent)
    try:
        from spkrec.io.atomic import save_npz
        for role, src in files.items():
            shutil.copyfile(src, os.path.join(tmp, cfg["models"][role]))
        for role, (npz_kind, arrays, meta) in made.items():
            save_npz(os.path.join(tmp, cfg["models"][role]), npz_kind, arrays, meta)
        for dest, src in copies.items():
            shutil.copytree(src, os.path.join(tmp, dest))
        _write_config(tmp, cfg)
        if snorm_cohort is not None:
            _add_cohort(tmp, cfg, snorm_cohort, snorm_method, snorm_top_n)
            _write_config(tmp, cfg)
        _replace_dir(tmp, out, parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return load_system(out)


def _write_config(path, cfg):
    cfg["fingerprint"] = fingerprint(path, cfg)
    with open(os.path.join(path, SYSTEM_FILE), "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=1)
        f.write("\n")


def _replace_dir(tmp, out, parent):
    old = None
    if os.path.exists(out):
        if not os.path.isfile(os.path.join(out, SYSTEM_FILE)) and os.listdir(out):
            raise SpkrecError(f"{out}: exists and is not a system bundle; choose another --out")
        old = tempfile.mkdtemp(prefix=f".{os.path.basename(out)}.old.", dir=parent)
        os.replace(out, os.path.join(old, "x"))
    os.replace(tmp, out)
    if old:
        shutil.rmtree(old, ignore_errors=True)


def _model_parts(kind, files, made, ubm, extractor, rnn, backend, scoring, relevance_factor, adapt, top_c,
                 background, svm_C, svm_class_weight):
    """Fill ``files`` / ``made`` for one model kind -> (the models' meta, scoring config, input dimension)."""
    from spkrec.system.engines import load_ubm
    if kind in ("gmm_ubm", "gsv_svm"):
        files["ubm"] = _model_path(ubm, "final.ubm.npz", f"--kind {kind}", "--ubm")
        meta = _model_meta(files["ubm"], "DiagGMM")
        want_dim = load_ubm(files["ubm"]).means_.shape[1]
        if kind == "gsv_svm":
            return meta, _gsv_parts(files, made, background, relevance_factor, svm_C, svm_class_weight), want_dim
        if top_c is not None and int(top_c) < 1:
            raise SpkrecError(f"--top-c {top_c} must be a positive number of Gaussians")
        from spkrec.gmm.map import ADAPT_MODES
        if adapt not in ADAPT_MODES:
            raise SpkrecError(f"unknown --adapt {adapt!r}; use one of {', '.join(ADAPT_MODES)}")
        return meta, {"relevance_factor": float(relevance_factor), "adapt": adapt,
                      "top_c": None if top_c is None else int(top_c)}, want_dim
    if kind == "ivector":
        files["extractor"] = _model_path(extractor, "extractor.npz", "--kind ivector", "--extractor")
        files["ubm"] = _model_path(os.path.dirname(files["extractor"]), "final.ubm.npz", "--kind ivector",
                                   "--extractor (a dir with extractor.npz and final.ubm.npz)")
        meta = _model_meta(files["extractor"], "IvectorExtractor")
        want_dim = load_ubm(files["ubm"]).means_.shape[1]
    else:
        files["encoder"] = _model_path(rnn, "final.pt", f"--kind {kind}", "--rnn")
        from spkrec.embeddings._torch import require_torch
        require_torch()
        from spkrec.embeddings.cnn import CNNEmbedder, load_embedder
        model = load_embedder(files["encoder"])
        if isinstance(model, CNNEmbedder) != (kind == "cnn"):
            raise SpkrecError(f"{files['encoder']}: a {'CNN' if isinstance(model, CNNEmbedder) else 'RNN'} "
                              f"model; export it with --kind {'cnn' if isinstance(model, CNNEmbedder) else 'rnn'}")
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
    score_cfg = {"backend": scoring}
    if kind == "ivector":
        from spkrec.ivector.stats import stats_options
        score_cfg["stats"] = stats_options(meta.get("stats", {}))
    return meta, score_cfg, want_dim


def _hmm_parts(files, hmm, relevance_factor, adapt, method, background):
    """Files and scoring config of a text-dependent HMM system -> (the HMMs' meta, scoring config, dimension)."""
    from spkrec.gmm.map import ADAPT_MODES
    from spkrec.hmm import PhraseHMMSet
    from spkrec.hmm.pipeline import BACKGROUNDS, METHODS
    files["hmms"] = _model_path(hmm, "hmms.npz", "--kind hmm", "--hmm")
    si = PhraseHMMSet.load(files["hmms"])
    for value, allowed, option in ((adapt, ADAPT_MODES, "--adapt"), (method, METHODS, "--hmm-method"),
                                   (background, BACKGROUNDS, "--hmm-background")):
        if value not in allowed:
            raise SpkrecError(f"unknown {option} {value!r}; use one of {', '.join(allowed)}")
    if not float(relevance_factor) > 0:
        raise SpkrecError(f"--relevance-factor {relevance_factor} must be positive")
    return si.meta, {"relevance_factor": float(relevance_factor), "adapt": adapt, "method": method,
                     "background": background, "phrases": si.phrases}, si.dim_


def _gsv_parts(files, made, background, relevance_factor, C, class_weight):
    if background is None:
        raise SpkrecError("--kind gsv_svm needs --background-supervectors (extract-supervectors of the "
                          "background speakers, as train-svm uses)")
    from spkrec.io.kaldi_io import read_vectors
    from spkrec.system.engines import load_ubm
    _, bg = read_vectors(background)
    ubm = load_ubm(files["ubm"])
    if bg.shape[1] != ubm.means_.size:
        raise SpkrecError(f"{background}: supervectors of dimension {bg.shape[1]}, the UBM's are "
                          f"{ubm.means_.size}; extract them with this UBM")
    if not float(C) > 0:
        raise SpkrecError(f"--svm-C {C} must be positive")
    if class_weight not in ("balanced", None):
        raise SpkrecError(f"unknown SVM class weight {class_weight!r}; use balanced or none")
    made["background"] = ("Supervectors", {"supervectors": bg}, {"source": os.fspath(background)})
    return {"relevance_factor": float(relevance_factor), "C": float(C), "class_weight": class_weight}


def _fusion_parts(components, fusion):
    """The front end, files, scoring config, extra config, copies and the LinearFusion of a fusion."""
    from spkrec.backend.calibration import LinearFusion
    if not components or len(components) < 2:
        raise SpkrecError("--kind fusion needs two or more --component bundles")
    if fusion is None:
        raise SpkrecError("--kind fusion needs --fusion (the `spkrec fuse --model-out` file)")
    fused = LinearFusion.load(fusion)
    if fused.weights_.size != len(components):
        raise SpkrecError(f"{fusion}: fuses {fused.weights_.size} systems, {len(components)} --component "
                          "bundles given; give them in the order of the fusion")
    systems = [load_system(c) for c in components]
    front = {k: systems[0].config[k] for k in FRONT_END}
    names, copies = [], {}
    for c, sys_ in zip(components, systems):
        if any(sys_.config[k] != front[k] for k in FRONT_END):
            raise SpkrecError(f"{c}: its front end (features, VAD, deltas/CMVN, rate) differs from "
                              f"{components[0]}'s; a fusion needs one front end")
        if sys_.kind == "fusion":
            raise SpkrecError(f"{c}: a fusion cannot be a component of another fusion")
        n = sys_.name if sys_.name not in names else f"{sys_.name}_{len(names)}"
        names.append(n)
        copies[os.path.join("components", n)] = os.fspath(c)
    if fused.systems_ and len(fused.systems_) == len(names) and fused.systems_ != names:
        import logging
        logging.getLogger("spkrec").warning("fusion %s was trained on %s; the components are %s (order matters)",
                                            fusion, ", ".join(fused.systems_), ", ".join(names))
    extra = {"components": [{"name": n, "dir": os.path.join("components", n), "fingerprint": s.fingerprint}
                            for n, s in zip(names, systems)],
             "fusion": {"weights": [float(w) for w in fused.weights_], "offset": float(fused.offset_),
                        "systems": list(fused.systems_)}}
    return front, {}, {}, extra, copies, fused


def _add_cohort(path, cfg, data, method, top_n):
    """Score-normalisation cohort of the bundle at ``path`` from the data dir ``data``: the cohort speakers'
    models (all their recordings) and each recording's representation, written beside the models."""
    from spkrec.features.pipeline import FeatureLoader
    from spkrec.io.atomic import save_npz
    from spkrec.io.datadir import DataDir
    from spkrec.system.api import System
    from spkrec.system.db import SpeakerDB
    d = DataDir(data)
    if not d.has("feats.scp"):
        raise SpkrecError(f"{d.file('feats.scp')}: the --snorm-cohort data dir has no features; run "
                          "compute-feats (and compute-vad) on it first")
    loader = FeatureLoader(d.file("feats.scp"), d.file("vad.scp") if d.has("vad.scp") else None,
                           **cfg["postprocess"])
    engine = System(path, cfg).engine
    spk2utt, utts = d.spk2utt, d.utts
    cohort = SpeakerDB("cohort", cfg["kind"], "cohort")
    for spk, spk_utts in spk2utt.items():
        cohort.add(spk, engine.enroll([loader(u) for u in spk_utts]), spk_utts)
    tests = engine.pack([engine.represent(loader(u)) for u in utts])
    cfg["models"]["cohort_models"] = "cohort_models.npz"
    cfg["models"]["cohort_tests"] = "cohort_tests.npz"
    cohort.save(os.path.join(path, "cohort_models.npz"))
    save_npz(os.path.join(path, "cohort_tests.npz"), "CohortTests", tests, {"utts": list(utts)})
    cfg["score_norm"] = {"method": method, "top_n": None if top_n is None else int(top_n),
                         "cohort_speakers": len(spk2utt), "cohort_recordings": len(utts),
                         "source": os.fspath(data)}


def _check_front_end(cfg, want):
    """The feature options must run and give the models' dimension (fails before anything is written)."""
    from spkrec.features.config import check_options, feature_function
    from spkrec.system.frontend import FrontEnd
    feat = cfg["features"]
    check_options(feature_function(feat["type"]), feat["options"], f"--feat-type {feat['type']}")
    if cfg["vad"] is not None and cfg["vad"].get("features"):
        vf = cfg["vad"]["features"]
        check_options(feature_function(vf["type"]), vf["options"], f"--vad-feat-type {vf['type']}")
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
