"""RNN (LSTM/GRU) speaker embeddings, an optional plug-in that needs PyTorch (``pip install 'spkrec[rnn]'``).

``import spkrec.embeddings`` works without PyTorch; the names below are imported lazily, and a missing
PyTorch raises :class:`~spkrec.errors.SpkrecError` with the install hint on first use.

- :class:`RNNEmbedder` (``train``): sklearn-style estimator (``fit``/``transform``/``predict_log_proba``/
  ``score``/``save``/``load``) wrapping the encoder, the loss and the training loop.
- :class:`SpeakerEncoder` (``model``): LSTM/GRU -> masked pooling -> projection -> unit vector.
- ``SoftmaxLoss``, ``TripletLoss``, ``ContrastiveLoss``, ``GE2ELoss``, ``ge2e_similarity`` (``losses``).
- ``embed_utterances``, ``extract_embeddings`` (``extract``); ``classify_closed_set`` (``classify``).
- :class:`CNNEmbedder` (``cnn``): VGG / thin ResNet-18/34 / ResNet-50 over log-mel filter banks
  (:class:`CNNEncoder`, ``SelfAttentivePooling``, ``stats_pooling`` in ``cnn_model``), AAM-softmax
  (``AAMSoftmaxLoss``), the same trainer; ``load_embedder`` reads either kind of model.
- ``knn_identify``, ``nearest`` (``knn``, no PyTorch): k-NN identification over embeddings.
"""
import importlib

from spkrec.embeddings._torch import INSTALL_HINT, require_torch  # noqa: F401  (torch-free)

_EXPORTS = {
    "RNNEmbedder": "train", "plot_history": "train",
    "SpeakerEncoder": "model", "AttentiveStatsPooling": "model",
    "SoftmaxLoss": "losses", "TripletLoss": "losses", "ContrastiveLoss": "losses", "GE2ELoss": "losses",
    "ge2e_similarity": "losses", "make_loss": "losses",
    "embed_utterances": "extract", "extract_embeddings": "extract",
    "classify_closed_set": "classify",
    "CNNEmbedder": "cnn", "load_embedder": "cnn", "CNNEncoder": "cnn_model", "SelfAttentivePooling": "cnn_model",
    "stats_pooling": "cnn_model", "AAMSoftmaxLoss": "losses", "knn_identify": "knn", "nearest": "knn",
}
__all__ = sorted(_EXPORTS) + ["require_torch", "INSTALL_HINT"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"spkrec.embeddings.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spkrec.embeddings' has no attribute {name!r}")
