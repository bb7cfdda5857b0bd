"""Training, enrolment and scoring over utterances read by a loader, in parallel (``spkrec.parallel``).

Score of a trial (model ``m`` = speaker ``s`` saying phrase ``p``, test frames ``X`` of length T)::

    background="claimed":  [log p(X | HMM_s,p) - log p(X | SI HMM_p)] / T
    background="all":      [log p(X | HMM_s,p) - max_q log p(X | SI HMM_q)] / T
    background="phrase":   [log p(X | HMM_s,p) - max_{q != p} log p(X | SI HMM_q)] / T

``log p`` is the forward (all paths) or Viterbi (best path) log-likelihood. Against the claimed phrase's
SI model alone, a test saying another phrase is explained equally badly by both models, so its ratio says
little; against the best SI phrase model it is low (the speaker model of the wrong phrase loses to the SI
model of the spoken one), which rejects wrong-phrase trials. The ``phrase`` score leaves the claimed phrase
out of the competitors: it is high only when the test says the claimed phrase better than any other phrase
says it, so wrong-phrase trials get strongly negative scores (a phrase check, fused with ``all`` in the
fsdd recipe).
"""
import numpy as np

from spkrec.errors import SpkrecError
from spkrec.gmm.core import PackedGMM
from spkrec.hmm import lattice
from spkrec.hmm.model import PhraseHMM, _logsumexp_last
from spkrec.hmm.sets import PhraseHMMSet, SpeakerHMMs
from spkrec.parallel import SERIAL, map_chunks

BACKGROUNDS = ("claimed", "all", "phrase")
METHODS = ("forward", "viterbi")


def _load(loader, utts, n_states, what):
    xs = []
    for u in utts:
        X = np.asarray(loader(u), dtype=np.float64)
        if len(X) < n_states:
            raise SpkrecError(f"{what} utterance {u} has {len(X)} frames, fewer than the HMM's {n_states} "
                              "states; remove it from the data dir or use fewer --num-states")
        xs.append(X)
    return xs


def _train_chunk(items, loader, hyper):
    out = []
    for phrase, utts in items:
        hmm = PhraseHMM(**hyper)
        out.append((phrase, hmm.fit(_load(loader, utts, hmm.n_states, f"training (phrase {phrase!r})"))))
    return out


def train_phrase_hmms(loader, phrase2utt, config=SERIAL, **hyper):
    """One :class:`PhraseHMM` per phrase from ``{phrase: [utt, ...]}``; returns a :class:`PhraseHMMSet`."""
    items = sorted(phrase2utt.items())
    if not items:
        raise SpkrecError("train: no phrases to train; check the data dir's text file")
    parts = map_chunks(_train_chunk, items, config, desc="train-hmm", loader=loader, hyper=hyper)
    return PhraseHMMSet([r for part in parts for r in part])


def _enroll_chunk(items, loader, si, relevance, adapt):
    out = []
    for (spk, phrase), utts in items:
        hmm = si[phrase]
        xs = _load(loader, utts, hmm.n_states, f"enrolment (speaker {spk}, phrase {phrase!r})")
        adapted = hmm.map_adapt(xs, relevance, adapt)
        out.append((spk, phrase, adapted, sum(len(x) for x in xs)))
    return out


def enroll_speaker_hmms(si, loader, groups, relevance_factor=16.0, config=SERIAL, adapt="m"):
    """MAP-adapt the SI model of each ``(speaker, phrase): [utt, ...]`` group (``adapt``: ``m``, ``mw``,
    ``mwv``: means, also weights, also variances); returns :class:`SpeakerHMMs`."""
    items = sorted(groups.items())
    for (spk, phrase), _ in items:
        if phrase not in si:
            raise SpkrecError(f"enrolment of speaker {spk}: phrase {phrase!r} has no HMM (phrases: "
                              f"{', '.join(si.phrases)}); train it or leave those utterances out")
    parts = map_chunks(_enroll_chunk, items, config, desc="enroll-hmm", loader=loader, si=si,
                       relevance=float(relevance_factor), adapt=adapt)
    res = [r for part in parts for r in part]
    ms = [r[2] for r in res]
    return SpeakerHMMs([r[0] for r in res], [r[1] for r in res], np.stack([m.means_ for m in ms]),
                       [r[3] for r in res], relevance_factor,
                       np.stack([m.weights_ for m in ms]) if "w" in adapt else None,
                       np.stack([m.variances_ for m in ms]) if "v" in adapt else None)


def _utt_loglik(hmm, lf, method):
    if method == "viterbi":
        return lattice.viterbi(hmm.startprob_, hmm.transmat_, lf, hmm.log_end_)[0]
    return lattice.forward(hmm.startprob_, hmm.transmat_, lf, hmm.log_end_)


def _stacked(hmms, D):
    """One :class:`PackedGMM` of all Gaussians of ``hmms`` (model-major, then state, then mixture)."""
    return PackedGMM(np.concatenate([h.weights_.reshape(-1) for h in hmms]),
                     np.concatenate([h.means_.reshape(-1, D) for h in hmms]),
                     np.concatenate([h.variances_.reshape(-1, D) for h in hmms]))


def _score_chunk(items, loader, si, speakers, method, backgrounds):
    """Scores of ``[(test_utt, [model_id, ...]), ...]``: the emissions of all utterances of the chunk under
    all SI models, and under all speaker models it needs, are two matrix products."""
    phrases = si.phrases
    S, M, D = si[phrases[0]].means_.shape
    xs = []
    for utt, _ in items:
        X = np.asarray(loader(utt), dtype=np.float64)
        if len(X) < S:
            raise SpkrecError(f"test utterance {utt} has {len(X)} frames, fewer than the HMM's {S} states; "
                              "remove its trials or use fewer --num-states")
        xs.append(X)
    allX = np.concatenate(xs)
    lf_si = _logsumexp_last(_stacked([si[p] for p in phrases], D).component_loglik(allX)
                            .astype(np.float64).reshape(len(allX), len(phrases), S, M))
    needed = sorted({speakers.index[m] for _, mids in items for m in mids})
    col = {i: k for k, i in enumerate(needed)}
    spk_models = [speakers.model_at(i, si) for i in needed]
    lf_spk = _logsumexp_last(_stacked(spk_models, D).component_loglik(allX)
                             .astype(np.float64).reshape(len(allX), len(needed), S, M))
    out, start = [], 0
    for (utt, mids), X in zip(items, xs):
        T = len(X)
        seg = slice(start, start + T)
        start += T
        si_ll = {}

        def si_loglik(q):
            if q not in si_ll:
                si_ll[q] = _utt_loglik(si[q], lf_si[seg, phrases.index(q)], method)
            return si_ll[q]

        best = max(si_loglik(q) for q in phrases) if "all" in backgrounds else None

        def denominator(bg, p):
            if bg == "all":
                return best
            if bg == "claimed":
                return si_loglik(p)
            return max(si_loglik(q) for q in phrases if q != p)   # phrase: the best competing phrase

        scores = []
        for m in mids:
            i = speakers.index[m]
            ll = _utt_loglik(spk_models[col[i]], lf_spk[seg, col[i]], method)
            scores.append([(ll - denominator(bg, speakers.phrases[i])) / T for bg in backgrounds])
        out.append(scores)
    return out


def score_trials(si, speakers, loader, trials, method="forward", background="all", config=SERIAL):
    """Scores (n,) float64 of ``trials`` (``(model_id, test_utt, ...)`` rows; see the module docstring);
    ``background`` a list of backgrounds: (n, len(background)) from one pass (the likelihoods are shared)."""
    if method not in METHODS:
        raise SpkrecError(f"score: unknown method {method!r}; use forward or viterbi")
    backgrounds = [background] if isinstance(background, str) else list(background)
    for bg in backgrounds:
        if bg not in BACKGROUNDS:
            raise SpkrecError(f"score: unknown background {bg!r}; use claimed, all or phrase")
    if "phrase" in backgrounds and len(si.phrases) < 2:
        raise SpkrecError("score: background phrase needs at least two phrase HMMs (the claimed one and a "
                          "competitor); use all or claimed")
    by_utt = {}
    for n, row in enumerate(trials):
        by_utt.setdefault(row[1], []).append(n)
    items = [(u, [trials[n][0] for n in ns]) for u, ns in by_utt.items()]
    parts = map_chunks(_score_chunk, items, config, desc="score-hmm", loader=loader, si=si, speakers=speakers,
                       method=method, backgrounds=backgrounds)
    scores = np.empty((len(trials), len(backgrounds)))
    for ns, s in zip(by_utt.values(), (s for part in parts for s in part)):
        scores[ns] = s
    return scores[:, 0] if isinstance(background, str) else scores
