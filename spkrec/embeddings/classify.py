"""Closed-set identification with the RNN softmax classifier trained on the evaluation speakers' enrolment data."""
import logging

from spkrec.errors import SpkrecError
from spkrec.parallel import SERIAL

log = logging.getLogger("spkrec")


def classify_closed_set(enroll_utts, enroll_labels, test_utts, enroll_loader=None, test_loader=None,
                        config=SERIAL, checkpoint_dir=None, embedder=None, **params):
    """Train an :class:`~spkrec.embeddings.RNNEmbedder` (or ``embedder``, e.g. ``CNNEmbedder``) with a
    classifier loss (``loss="softmax"`` unless given: softmax or aam) on the enrolment utterances (every
    enrolled speaker is a class, no validation hold-out) and score every test utterance.

    ``enroll_utts``/``test_utts``: utterance ids read by the loaders, or ``(T, D)`` arrays without loaders.
    ``params``: further hyper-parameters of the embedder (epochs, hidden_size, ...).

    Returns ``(model, rows)`` where ``rows`` lists ``(speaker, test_index_or_id, log_posterior)`` for every
    (speaker, test utterance) pair, speakers in ``model.classes_`` order within each test utterance.
    """
    from spkrec.embeddings.train import RNNEmbedder
    params = {"loss": "softmax", **params, "val_fraction": 0.0}
    if params["loss"] not in ("softmax", "aam"):
        raise SpkrecError(f"closed-set identification needs a classifier loss (softmax or aam), not {params['loss']}")
    if len(set(enroll_labels)) < 2:
        raise SpkrecError("closed-set identification needs at least 2 enrolled speakers")
    model = (embedder or RNNEmbedder)(**params)
    model.fit(enroll_utts, enroll_labels, loader=enroll_loader, checkpoint_dir=checkpoint_dir, config=config)
    logp = model.predict_log_proba(test_utts, loader=test_loader, config=config)
    names = list(test_utts) if test_loader is not None else list(range(len(test_utts)))
    rows = [(spk, name, float(logp[i, j])) for i, name in enumerate(names) for j, spk in enumerate(model.classes_)]
    return model, rows


def identification_report(rows, test_utt2spk, k=5, what="classify-rnn"):
    """Top-1 and top-k accuracy (fractions) of ``(speaker, test, score)`` rows; ``(top1, topk, k)``."""
    from spkrec.eval.identification import identification_scores, top_k_accuracy
    matrix, true_idx = identification_scores(rows, test_utt2spk, what=what)
    k = int(min(k, matrix.shape[1]))
    return top_k_accuracy(matrix, true_idx, 1), top_k_accuracy(matrix, true_idx, k), k

