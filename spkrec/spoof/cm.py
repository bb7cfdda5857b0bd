"""GMM countermeasure (the ASVspoof 2019 LFCC-GMM / CQCC-GMM baseline): one diagonal GMM on bona fide
frames, one on spoofed frames; the score of an utterance is the average frame log-likelihood ratio
``mean_t [log p(x_t | bona fide) - log p(x_t | spoof)]`` (higher = more likely bona fide).

With ``spoof_models="per_attack"`` there is one spoof GMM per training attack and the score is
``mean_t log p(x_t | bona fide) - max_a mean_t log p(x_t | attack a)`` (the closest attack model), or with
``combine="logsumexp"`` ``... - log sum_a (1/A) exp(mean_t log p(x_t | attack a))`` (attacks equally likely).

:func:`cm_threshold` picks a CM threshold from held-out bona fide and spoof scores by a policy.
"""
import json
import os
import re

import numpy as np
from sklearn.base import BaseEstimator

from spkrec.errors import SpkrecError
from spkrec.parallel import SERIAL, map_items

BONAFIDE_FILE = "bonafide.gmm.npz"
SPOOF_FILE = "spoof.gmm.npz"


def feature_type_of(feats_scp):
    """The feature type that ``spkrec compute-feats`` wrote ``feats_scp`` with (read from the
    ``raw_<type>_<data>.options.json`` next to its first ark), or None when unknown."""
    try:
        with open(feats_scp, encoding="utf-8") as f:
            first = f.readline().split(None, 1)[1].strip()
    except (OSError, IndexError):
        return None
    ark = first.rsplit(":", 1)[0] if re.search(r":\d+$", first) else first
    prefix = re.sub(r"\.\d+\.ark$", "", os.path.basename(ark))
    path = os.path.join(os.path.dirname(ark), f"{prefix}.options.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f).get("feat_type")
    except (OSError, ValueError, AttributeError):
        return None


def _avg_llr(utts, loader, bona, spoof, combine="max"):
    from scipy.special import logsumexp
    out = []
    for utt in utts:
        x = loader(utt)
        ll = bona.score_samples(x)
        if isinstance(spoof, dict):
            att = np.array([np.mean(g.score_samples(x)) for g in spoof.values()])
            other = att.max() if combine == "max" else logsumexp(att) - np.log(att.size)
            out.append((utt, float(np.mean(ll) - other)))
        else:
            out.append((utt, float(np.mean(ll - spoof.score_samples(x)))))
    return out


def _attack_file(attack):
    return f"spoof.{attack}.gmm.npz"


def cm_threshold(bonafide, spoof, policy):
    """CM threshold (accept bona fide at score >= it) from held-out scores by ``policy``:
    ``"bayes:P"`` minimises the empirical Bayes error ``P * P_fa(spoof) + (1 - P) * P_miss(bona fide)`` at
    spoof prior P; ``"bonafide-miss:R"`` is the highest threshold that rejects at most a fraction R of the
    bona fide scores; ``"eer"`` the pooled EER threshold."""
    bonafide, spoof = np.asarray(bonafide, float), np.asarray(spoof, float)
    if bonafide.size == 0 or spoof.size == 0:
        raise SpkrecError(f"a CM threshold needs bona fide and spoof scores (got {bonafide.size}, {spoof.size})")
    name, _, value = str(policy).partition(":")
    if name == "eer":
        from spkrec.eval.spoof import two_class_eer
        return float(two_class_eer(bonafide, spoof)[1])
    try:
        p = float(value)
    except ValueError:
        p = -1.0
    if name not in ("bayes", "bonafide-miss") or not 0.0 <= p <= 1.0 or (name == "bayes" and p in (0.0, 1.0)):
        raise SpkrecError(f"CM threshold policy {policy!r}: use bayes:P (0 < P < 1), bonafide-miss:R (0 <= R <= 1) "
                          f"or eer")
    b = np.sort(bonafide)
    if name == "bonafide-miss":
        k = int(np.floor(p * b.size + 1e-9))      # at most k bona fide scores may fall below the threshold
        return float(b[k]) if k < b.size else float(b[-1]) + 1.0
    cand = np.unique(np.concatenate([bonafide, spoof, [np.max(spoof) + 1.0]]))
    miss = np.searchsorted(b, cand, side="left") / b.size
    fa = 1.0 - np.searchsorted(np.sort(spoof), cand, side="left") / spoof.size
    return float(cand[np.argmin(p * fa + (1.0 - p) * miss)])


class GMMCountermeasure(BaseEstimator):
    """Two-GMM countermeasure.

    Parameters
    ----------
    n_components : Gaussians of each GMM (ASVspoof baseline: 512)
    n_iter, init, var_floor, subsample, random_state : as :class:`spkrec.gmm.DiagGMM`
    spoof_models : ``"pooled"`` (one spoof GMM, the baseline) or ``"per_attack"`` (one per attack)
    combine : ``"max"`` (closest attack) or ``"logsumexp"`` (attacks equally likely), for ``per_attack``

    Fitted attributes: ``bonafide_`` (:class:`~spkrec.gmm.DiagGMM`), ``spoof_`` (a DiagGMM, or with
    ``per_attack`` a dict ``{attack: DiagGMM}``), ``meta_`` (dict: feature type and options, numbers of
    training utterances).
    """

    def __init__(self, n_components=512, n_iter=10, init="split", var_floor=1e-3, subsample=1, random_state=0,
                 spoof_models="pooled", combine="max"):
        self.spoof_models = spoof_models
        self.combine = combine
        self.n_components = n_components
        self.n_iter = n_iter
        self.init = init
        self.var_floor = var_floor
        self.subsample = subsample
        self.random_state = random_state

    def _gmm(self, config):
        from spkrec.gmm import DiagGMM
        return DiagGMM(n_components=self.n_components, n_iter=self.n_iter, init=self.init,
                       var_floor=self.var_floor, subsample=self.subsample, random_state=self.random_state,
                       verbose=True, parallel=config)

    def fit(self, loader, bonafide_utts, spoof_utts, config=SERIAL, meta=None, spoof_attacks=None):
        """Train on ``loader(utt) -> (T, D)`` frames of the bona fide and the spoofed utterances;
        ``spoof_attacks`` (one name per spoofed utterance) is needed for ``per_attack``."""
        if self.spoof_models not in ("pooled", "per_attack"):
            raise SpkrecError(f"spoof_models must be 'pooled' or 'per_attack', got {self.spoof_models!r}")
        if self.combine not in ("max", "logsumexp"):
            raise SpkrecError(f"combine must be 'max' or 'logsumexp', got {self.combine!r}")
        if not bonafide_utts or not spoof_utts:
            raise SpkrecError(f"a countermeasure needs bona fide and spoofed training utterances "
                              f"(got {len(bonafide_utts)} bona fide, {len(spoof_utts)} spoofed); check utt2attack")
        self.bonafide_ = self._gmm(config).fit(loader, utt_ids=list(bonafide_utts))
        if self.spoof_models == "pooled":
            self.spoof_ = self._gmm(config).fit(loader, utt_ids=list(spoof_utts))
        else:
            if spoof_attacks is None or len(spoof_attacks) != len(spoof_utts):
                raise SpkrecError("per-attack spoof models need the attack of every spoofed training utterance")
            bad = [a for a in set(spoof_attacks) if not re.fullmatch(r"[A-Za-z0-9_.-]+", str(a))]
            if bad:
                raise SpkrecError(f"attack name {bad[0]!r} cannot name a model file; use letters, digits, _ . -")
            self.spoof_ = {a: self._gmm(config).fit(loader, utt_ids=[u for u, b in zip(spoof_utts, spoof_attacks)
                                                                      if b == a])
                           for a in sorted(set(spoof_attacks))}
        self.meta_ = dict(meta or {}, num_bonafide=len(bonafide_utts), num_spoof=len(spoof_utts),
                          combine=self.combine)
        return self

    def _spoof_gmms(self):
        return self.spoof_ if isinstance(self.spoof_, dict) else {None: self.spoof_}

    @property
    def dim_(self):
        return self.bonafide_.dim_

    def score_utterances(self, loader, utts, config=SERIAL):
        """``{utt: average frame LLR}`` (bona fide minus spoof)."""
        if not hasattr(self, "bonafide_"):
            raise SpkrecError("GMMCountermeasure is not fitted; call fit() or load() first")
        from spkrec.parallel import chunk
        jobs = chunk(list(utts), max(1, min(len(utts), config.nj * 4)))
        results = map_items(_avg_llr, jobs, config, desc="score-cm", loader=loader, bona=self.bonafide_,
                            spoof=self.spoof_, combine=self.combine)
        return dict(pair for part in results for pair in part)

    def save(self, model_dir):
        """Write ``bonafide.gmm.npz`` and ``spoof.gmm.npz`` (or ``spoof.<attack>.gmm.npz`` per attack;
        with ``meta_``) into ``model_dir``."""
        os.makedirs(model_dir, exist_ok=True)
        attacks = sorted(self.spoof_) if isinstance(self.spoof_, dict) else None
        meta = {"cm": dict(self.meta_, spoof_attack_models=attacks)}
        for attack, gmm in self._spoof_gmms().items():
            gmm.save(os.path.join(model_dir, SPOOF_FILE if attack is None else _attack_file(attack)), meta=meta)
        self.bonafide_.save(os.path.join(model_dir, BONAFIDE_FILE), meta=meta)

    @classmethod
    def load(cls, model_dir):
        from spkrec.gmm import DiagGMM
        def _load(name):
            path = os.path.join(model_dir, name)
            if not os.path.exists(path):
                raise SpkrecError(f"{path}: not found; train the countermeasure with `spkrec train-cm` first")
            return DiagGMM.load(path)
        cm = cls()
        cm.bonafide_ = _load(BONAFIDE_FILE)
        cm.meta_ = dict(cm.bonafide_.meta_.get("cm", {}))
        attacks = cm.meta_.pop("spoof_attack_models", None)
        if attacks:
            cm.spoof_models, cm.spoof_ = "per_attack", {a: _load(_attack_file(a)) for a in attacks}
            cm.combine = cm.meta_.get("combine", "max")
        else:
            cm.spoof_ = _load(SPOOF_FILE)
        cm.n_components = cm.bonafide_.n_components_
        if any(g.dim_ != cm.bonafide_.dim_ for g in cm._spoof_gmms().values()):
            raise SpkrecError(f"{model_dir}: bona fide and spoof GMMs differ in dimension; retrain the CM")
        return cm
