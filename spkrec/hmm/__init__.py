"""Text-dependent speaker verification with left-to-right HMMs (one per phrase) and GMM state emissions.

Public API::

    PhraseHMM(n_states=5, n_components=2, ...)  .fit(utterances) / .map_adapt(utterances, r, adapt="m")
                                                .score_utterance(X, method) / .decode(X) / .posteriors(X)
    PhraseHMMSet({phrase: PhraseHMM})        speaker-independent models of all phrases in one .npz
    SpeakerHMMs(speakers, phrases, means)    MAP-adapted speaker x phrase models in one .npz
    train_phrase_hmms(loader, phrase2utt, config, **hyper) -> PhraseHMMSet
    enroll_speaker_hmms(si, loader, {(spk, phrase): utts}, relevance_factor, config, adapt) -> SpeakerHMMs
    score_trials(si, speakers, loader, trials, method="forward", background="all", config) -> (n,)
        (background a list, e.g. ["all", "claimed"]: (n, 2) from one pass)
"""
import importlib

_EXPORTS = {
    "PhraseHMM": "model", "PhraseHMMSet": "sets", "SpeakerHMMs": "sets", "model_id": "sets",
    "train_phrase_hmms": "pipeline", "enroll_speaker_hmms": "pipeline", "score_trials": "pipeline",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"spkrec.hmm.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'spkrec.hmm' has no attribute {name!r}")
