"""The user-facing verbs on a loaded bundle: enrol speakers, verify a claim, identify a speaker."""
import dataclasses
import os

import numpy as np

from spkrec.errors import SpkrecError
from spkrec.system.db import SpeakerDB, db_file, sub_arrays


@dataclasses.dataclass
class VerifyResult:
    """One verification: raw ``score``, calibrated ``llr``, the ``threshold`` (LLR) and ``decision``."""
    file: str
    speaker: str
    score: float
    llr: float
    threshold: float
    decision: str  # "accept" | "reject"

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class IdentifyResult:
    """One identification: ``top`` speakers best first (``{"speaker", "score", "llr"}``) and the
    ``decision``: the best speaker, or ``"unknown"`` in open-set mode when its LLR is below ``threshold``."""
    file: str
    top: list
    decision: str
    threshold: float = None

    def to_dict(self):
        return dataclasses.asdict(self)


class System:
    """A loaded system bundle (see :func:`spkrec.load_system`).

    ``kind``, ``name``, ``sample_rate``, ``fingerprint``, ``calibrated``, ``scale``/``offset``
    (llr = scale * score + offset), ``threshold`` (the default decision threshold on the LLR),
    ``config`` (the parsed ``system.json``). A system with ``score_norm`` normalises its raw scores with
    its cohort (Z/T/S/adaptive S-norm, as ``spkrec score-norm``); a ``"fusion"`` system's raw score is the
    linear fusion of its ``components`` (each a system with the same front end).
    """

    def __init__(self, path, config):
        from spkrec.system.engines import ENGINES
        from spkrec.system.frontend import FrontEnd
        self.path = os.fspath(path)
        self.config = config
        self.kind = config["kind"]
        self.name = config.get("name") or os.path.basename(os.path.normpath(self.path))
        self.sample_rate = int(config["sample_rate"])
        self.fingerprint = config["fingerprint"]
        cal = config["calibration"]
        self.calibrated = bool(cal["calibrated"])
        self.scale, self.offset = float(cal["scale"]), float(cal["offset"])
        th = config["thresholds"]
        self.target_prior = float(th["target_prior"])
        default = th.get("default", "bayes")
        self.threshold = float(th["eer"]["llr"] if default == "eer" and th.get("eer") else th["bayes"])
        vad = config["vad"]
        self.frontend = FrontEnd(self.sample_rate, config["features"]["type"], config["features"]["options"],
                                 None if vad is None else vad["options"], config["postprocess"],
                                 None if vad is None else vad.get("features"))
        self.engine, self.components, self.norm = None, [], None
        if self.kind == "fusion":
            from spkrec.system.bundle import load_system
            self.components = [load_system(os.path.join(self.path, c["dir"])) for c in config["components"]]
            self.fusion_weights = np.asarray(config["fusion"]["weights"], dtype=np.float64)
            self.fusion_offset = float(config["fusion"]["offset"])
            return
        if self.kind not in ENGINES:
            raise SpkrecError(f"{self.path}: system kind {self.kind!r} is not supported by this spkrec "
                              f"({', '.join(ENGINES)}); upgrade spkrec")
        self.engine = ENGINES[self.kind].from_bundle(self.path, config)
        if config.get("score_norm"):
            from spkrec.io.atomic import load_npz
            from spkrec.system.db import SpeakerDB
            models = config["models"]
            cohort = SpeakerDB.load(os.path.join(self.path, models["cohort_models"]))
            tests, _ = load_npz(os.path.join(self.path, models["cohort_tests"]), "CohortTests")
            self.norm = dict(config["score_norm"], models=cohort.stacked(), tests=self.engine.unpack(tests))

    def __repr__(self):
        return (f"System({self.name!r}, kind={self.kind}, {'calibrated' if self.calibrated else 'uncalibrated'}, "
                f"threshold={self.threshold:.3f})")

    # ----------------------------------------------------------------------------- pieces
    def frames(self, audio, name=None):
        """Model-ready frames (T, dim) of a file path or a ``(samples, rate)`` pair."""
        return self.frontend(audio, name)

    def llr(self, score):
        """Calibrated LLR of raw score(s)."""
        return self.scale * np.asarray(score, dtype=np.float64) + self.offset

    def decision_threshold(self, threshold=None, target_prior=None):
        """The LLR threshold: ``threshold`` if given, else the Bayes one for ``target_prior``, else the
        bundle's default."""
        if threshold is not None:
            return float(threshold)
        if target_prior is not None:
            from spkrec.eval.metrics import bayes_threshold
            return bayes_threshold(float(target_prior))
        return self.threshold

    def speaker_arrays(self, frames, phrase=None):
        """The database arrays of one speaker enrolled from ``frames`` (a list of (T, dim) arrays): the
        engine's, with ``norm.enroll_cohort`` (1, C) (the speaker against the cohort's recordings) when the
        system normalises scores, and each component's under ``c<i>.`` for a fusion. ``phrase``: the
        pass-phrase the recordings say (text-dependent systems, kind ``hmm``)."""
        if self.components:
            return {f"c{i}.{k}": v for i, c in enumerate(self.components)   # the phrase to text-dependent ones
                    for k, v in c.speaker_arrays(frames, phrase if getattr(c.engine, "text_dependent", False)
                                                 else None).items()}
        if phrase is None:
            arrays = self.engine.enroll(frames)
        elif getattr(self.engine, "text_dependent", False):
            arrays = self.engine.enroll(frames, phrase=phrase)
        else:
            raise SpkrecError(f"--phrase {phrase!r}: a {self.kind} system is text-independent; enrol without "
                              "--phrase, or use a text-dependent (hmm) system")
        if self.norm is not None:
            rows = len(next(iter(arrays.values())))
            arrays["norm.enroll_cohort"] = self.engine.score_many(arrays, {"": np.zeros(rows, np.int64)},
                                                                  self.norm["tests"])
        return arrays

    def frame_scores(self, arrays, owners, X):
        """Raw scores (S,) of model-ready frames X (T, dim) against the speakers of ``arrays``/``owners``
        (:meth:`SpeakerDB.stacked`), score-normalised or fused as the system says."""
        if self.components:
            parts = [c.frame_scores(*sub_arrays(arrays, owners, f"c{i}"), X) for i, c in enumerate(self.components)]
            return np.stack(parts, axis=1) @ self.fusion_weights + self.fusion_offset
        rep = self.engine.represent(X)
        raw = self.engine.score_many(arrays, owners, [rep])
        if self.norm is None:
            return raw[:, 0]
        from spkrec.backend.score_norm import normalise
        test_cohort = self.engine.score_many(*self.norm["models"], [rep]).T      # (1, C')
        return normalise(self.norm["method"], raw, arrays["norm.enroll_cohort"], test_cohort,
                         top_n=self.norm.get("top_n"))[:, 0]

    # ----------------------------------------------------------------------------- databases
    def new_db(self):
        """An empty speaker database of this system."""
        return SpeakerDB(self.fingerprint, self.kind, self.name)

    def check_db(self, db, where="speaker database"):
        if db.system != self.fingerprint:
            raise SpkrecError(f"{where}: made with another system ({db.system_name or '?'}, {db.kind}, "
                              f"fingerprint {db.system[:12]}), not with {self.path} ({self.fingerprint[:12]}); enrol the "
                              "speakers again with this system or use the system that made it")

    def load_db(self, path, create=False):
        """Read a speaker database (an .npz file or a dir) and check that it belongs to this system;
        with ``create``, a missing one is a new empty database."""
        if create and not os.path.exists(db_file(path)):
            return self.new_db()
        db = SpeakerDB.load(path)
        self.check_db(db, db_file(path))
        return db

    # ----------------------------------------------------------------------------- verbs
    def enroll(self, speakers, db=None, phrase=None):
        """Enrol ``{name: [audio, ...]}`` (paths or ``(samples, rate)`` pairs) into ``db`` (default a new one);
        re-enrolling a name replaces it. ``phrase``: the pass-phrase all the recordings say (text-dependent
        systems; needed when the system has several). Returns the database."""
        db = self.new_db() if db is None else db
        self.check_db(db)
        if not speakers:
            raise SpkrecError("no speakers to enrol; give at least one speaker with its recordings")
        models = {}
        for name, files in speakers.items():
            files = [files] if isinstance(files, (str, os.PathLike)) else list(files)
            if not files:
                raise SpkrecError(f"speaker {name!r} has no audio files to enrol; give at least one recording")
            frames = [self.frames(f, _label(f, i)) for i, f in enumerate(files)]
            models[name] = (self.speaker_arrays(frames, phrase), [_label(f, i) for i, f in enumerate(files)])
        for name, (arrays, files) in models.items():  # all files read before the database changes
            db.add(name, arrays, files)
        return db

    def scores(self, db, audio, names=None, name=None):
        """Raw scores (S,) of one recording against ``names`` (default all speakers of ``db``)."""
        self.check_db(db)
        X = self.frames(audio, name)
        arrays, owners = db.stacked(names)
        return np.asarray(self.frame_scores(arrays, owners, X), dtype=np.float64)

    def verify(self, db, speaker, audio, threshold=None, target_prior=None):
        """Is ``audio`` spoken by enrolled ``speaker``? -> :class:`VerifyResult`."""
        db.check_speaker(speaker)
        label = _label(audio, 0)
        score = float(self.scores(db, audio, [speaker], label)[0])
        llr = float(self.llr(score))
        thr = self.decision_threshold(threshold, target_prior)
        return VerifyResult(label, speaker, score, llr, thr, "accept" if llr >= thr else "reject")

    def identify(self, db, audio, top=5, open_set=False, threshold=None, target_prior=None):
        """Who among the enrolled speakers speaks in ``audio``? -> :class:`IdentifyResult` (best first);
        ``open_set``: ``"unknown"`` when the best LLR is below the threshold."""
        if int(top) < 1:
            raise SpkrecError(f"top={top}: list at least 1 speaker")
        label = _label(audio, 0)
        scores = self.scores(db, audio, None, label)
        llrs = self.llr(scores)
        names = db.names
        order = np.argsort(-scores, kind="stable")[:int(top)]
        best = [{"speaker": names[i], "score": float(scores[i]), "llr": float(llrs[i])} for i in order]
        thr = self.decision_threshold(threshold, target_prior) if open_set else None
        decision = best[0]["speaker"]
        if open_set and best[0]["llr"] < thr:
            decision = "unknown"
        return IdentifyResult(label, best, decision, thr)


def _label(audio, i):
    return os.fspath(audio) if isinstance(audio, (str, os.PathLike)) else f"<array {i}>"
