"""A back end as ordered transforms plus an optional final scorer, saved as ONE ``.npz`` file.

Arrays of step ``i`` are stored as ``"<i>.<name>.<array>"`` (e.g. ``"1.lda.W_"``), the scorer's as
``"scorer.<name>.<array>"``; the header lists each step's name and hyper-parameters.
"""
from sklearn.base import BaseEstimator

from spkrec.backend.base import check_vectors, group_means
from spkrec.backend.cosine import CosineScorer
from spkrec.backend.plda import SimplifiedPLDA, TwoCovPLDA
from spkrec.backend.transforms import LDA, WCCN, Center, LengthNorm, Whiten
from spkrec.errors import SpkrecError
from spkrec.io.atomic import load_npz, save_npz

TRANSFORMS = {"center": Center, "whiten": Whiten, "lda": LDA, "wccn": WCCN, "lnorm": LengthNorm}
SCORERS = {"two-cov": TwoCovPLDA, "simplified": SimplifiedPLDA, "cosine": CosineScorer}
_NAME_OF = {cls: name for name, cls in {**TRANSFORMS, **SCORERS}.items()}
# the hyper-parameter set by "<step>:<value>" in a step string
_STEP_ARG = {"lda": ("n_components", int), "whiten": ("method", str), "lnorm": ("scale", str),
             "two-cov": ("n_iter", int), "simplified": ("n_speaker_factors", int)}


class BackendPipeline(BaseEstimator):
    """Ordered transforms (fitted in turn on the output of the previous ones) and an optional scorer.

    steps : list of transform estimators (:mod:`spkrec.backend.transforms`).
    scorer : :class:`TwoCovPLDA`, :class:`SimplifiedPLDA`, :class:`CosineScorer` or None (= cosine).
    """

    def __init__(self, steps=(), scorer=None):
        self.steps = steps
        self.scorer = scorer

    def fit(self, X, y=None):
        """Fit every step and the scorer on (n, dim) vectors with speaker labels y (n,)."""
        X = check_vectors(X, "BackendPipeline.fit")
        for step in self.steps:
            X = step.fit(X, y).transform(X)
        if self.scorer is not None:
            self.scorer.fit(X, y)
        return self

    def transform(self, X):
        """Apply the transforms (not the scorer): (n, dim_in) -> (n, dim_out) float64."""
        X = check_vectors(X, "BackendPipeline.transform")
        for step in self.steps:
            X = step.transform(X)
        return X

    def score_pairs(self, enroll, test, enroll_groups=None, n_enroll=1, pairs=None):
        """Score enrolment against test vectors through the transforms and the scorer.

        enroll : (m, dim) vectors; with ``enroll_groups`` (m,) ints ``0..M-1`` several rows form one model:
            they are transformed one by one, averaged, and PLDA uses their count (exact multi-enrolment
            LLR). Without it every row is one model standing for ``n_enroll`` (int or (M,)) vectors.
        test : (K, dim) vectors. pairs : optional ``(model_index (P,), test_index (P,))``.
        Returns (M, K) scores, or (P,) for ``pairs``.
        """
        E, T = self.transform(enroll), self.transform(test)
        counts = n_enroll
        if enroll_groups is not None:
            if len(enroll_groups) != len(E):
                raise SpkrecError("enroll_groups: need one model index per enrolment vector")
            E, counts = group_means(E, enroll_groups)
        scorer = self.scorer if self.scorer is not None else CosineScorer()
        return scorer.score_pairs(E, T, n_enroll=counts, pairs=pairs)

    def save(self, path):
        arrays, steps = {}, []
        for i, step in enumerate(self.steps):
            a, _ = step._get_state()
            name = _NAME_OF[type(step)]
            arrays.update({f"{i}.{name}.{k}": v for k, v in a.items()})
            steps.append({"name": name, "params": step.get_params()})
        scorer = None
        if self.scorer is not None:
            a, _ = self.scorer._get_state()
            name = _NAME_OF[type(self.scorer)]
            arrays.update({f"scorer.{name}.{k}": v for k, v in a.items()})
            scorer = {"name": name, "params": self.scorer.get_params()}
        save_npz(path, "BackendPipeline", arrays, {"steps": steps, "scorer": scorer})

    @classmethod
    def load(cls, path):
        arrays, meta = load_npz(path, "BackendPipeline")

        def part(prefix):
            return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

        steps = []
        for i, spec in enumerate(meta["steps"]):
            klass = TRANSFORMS[spec["name"]]
            steps.append(klass.from_state(part(f"{i}.{spec['name']}."), {"params": spec["params"]}))
        scorer = None
        if meta.get("scorer"):
            spec = meta["scorer"]
            scorer = SCORERS[spec["name"]].from_state(part(f"scorer.{spec['name']}."),
                                                      {"params": spec["params"]})
        return cls(steps, scorer)

    @property
    def is_plda(self):
        return isinstance(self.scorer, (TwoCovPLDA, SimplifiedPLDA))


def make_pipeline(spec, plda="two-cov"):
    """Build a pipeline from a step string such as ``"center,lda:150,wccn,lnorm,plda"``.

    Steps: ``center``, ``whiten[:zca|pca]``, ``lda:N``, ``wccn``, ``lnorm[:sqrt_dim|unit]``; the last may be a
    scorer: ``plda[:ARG]`` (variant ``plda`` = ``"two-cov"`` (ARG = EM iterations) or ``"simplified"`` (ARG =
    speaker factors)) or ``cosine``.
    """
    if plda not in ("two-cov", "simplified"):
        raise SpkrecError(f"--plda {plda!r}: unknown PLDA variant; use two-cov or simplified")
    steps, scorer = [], None
    items = [s.strip() for s in spec.split(",") if s.strip()]
    if not items:
        raise SpkrecError("--steps is empty; give e.g. center,lda:150,wccn,lnorm,plda")
    for pos, item in enumerate(items):
        name, _, arg = item.partition(":")
        name = name.lower()
        name = {"plda": plda, "length-norm": "lnorm", "lengthnorm": "lnorm"}.get(name, name)
        if name not in TRANSFORMS and name not in SCORERS:
            raise SpkrecError(f"--steps: unknown step {item!r}; use center, whiten, lda:N, wccn, lnorm, "
                              "plda or cosine")
        if scorer is not None:
            raise SpkrecError(f"--steps: {item!r} follows the scorer; plda/cosine must be the last step")
        params = {}
        if arg:
            if name not in _STEP_ARG:
                raise SpkrecError(f"--steps: step {item!r} takes no argument; write {name}")
            key, typ = _STEP_ARG[name]
            try:
                params[key] = typ(arg)
            except ValueError:
                raise SpkrecError(f"--steps: bad argument in {item!r}; expected {typ.__name__}") from None
        obj = (SCORERS if name in SCORERS else TRANSFORMS)[name](**params)
        if name in SCORERS:
            scorer = obj
        else:
            steps.append(obj)
    return BackendPipeline(steps, scorer)

