"""The speaker-encoder trainer (Adam on random crops, seeded, checkpointed, resumable) and ``RNNEmbedder``.

:class:`EmbedderBase` holds the training loop, checkpoints, extraction and files; :class:`RNNEmbedder`
(LSTM/GRU) and :class:`spkrec.embeddings.cnn.CNNEmbedder` (VGG / thin ResNet) only build their encoder
and, for the CNN, draw their own crops (augmentation). Both are scikit-learn estimators.

Reproducibility: ``random_state`` seeds the weights (``torch.manual_seed``) and, per epoch, a numpy
``Generator`` seeded with ``(random_state, epoch)`` draws the batches and crops, so a run resumed from a
checkpoint makes exactly the same updates as an uninterrupted one. Deterministic kernels are requested;
on CPU with the same number of threads reruns are bit-identical.
"""
import logging
import math
import os
import time

import numpy as np
from sklearn.base import BaseEstimator

from spkrec.embeddings._torch import (deterministic, load_torch, require_torch, save_torch_atomic, seed_everything,
                                    torch_threads)
from spkrec.embeddings.sampling import nm_batches, pad_batch, random_crop
from spkrec.errors import SpkrecError
from spkrec.parallel import SERIAL, map_chunks

log = logging.getLogger("spkrec")

KIND = "spkrec-rnn-embedder"
FORMAT_VERSION = 1
CHECKPOINT = "checkpoint.pt"
LOSS_CURVE = "loss_curve.png"
# hyper-parameters that define the model and its training; a checkpoint of other values is not resumed
ARCH_PARAMS = ("cell", "num_layers", "hidden_size", "bidirectional", "pooling", "embed_dim")
TRAIN_PARAMS = ("loss", "margin", "crop_frames", "batch_speakers", "batch_utts", "batches_per_epoch", "lr",
                "val_fraction", "random_state")
GRAD_CLIP = 5.0


def _frame_stats(mats):
    """Per-dimension mean and standard deviation (floored at 1e-3) of all frames, float32 ``(D,)`` each."""
    n, s1, s2 = 0, 0.0, 0.0
    for m in mats:
        m = m.astype(np.float64)
        n, s1, s2 = n + m.shape[0], s1 + m.sum(0), s2 + (m * m).sum(0)
    mean = s1 / n
    std = np.sqrt(np.maximum(s2 / n - mean * mean, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def _load_chunk(utts, loader):
    return [np.asarray(loader(u), dtype=np.float32) for u in utts]


class EmbedderBase(BaseEstimator):
    """The trainer shared by the RNN and CNN embedders (subclasses set ``KIND``, ``ARCH_PARAMS``, ``_make_encoder``)."""

    KIND = KIND
    ARCH_PARAMS = ARCH_PARAMS
    TRAIN_PARAMS = TRAIN_PARAMS
    NAME = "RNN"
    TRAIN_VERB = "train-rnn"

    def _check_params(self):
        from spkrec.embeddings.losses import LOSSES
        self._check_arch()
        if self.loss not in LOSSES:
            raise SpkrecError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if int(self.epochs) < 0 or int(self.crop_frames) < 1 or float(self.lr) <= 0:
            raise SpkrecError("--epochs must be >= 0, --crop-frames >= 1 and --lr > 0")
        if int(self.batch_speakers) < 2 or int(self.batch_utts) < 1:
            raise SpkrecError("--batch-speakers must be >= 2 and --batch-utts >= 1")
        if self.loss not in ("softmax", "aam") and int(self.batch_utts) < 2:
            raise SpkrecError(f"the {self.loss} loss needs --batch-utts >= 2 (pairs of the same speaker)")
        if not 0.0 <= float(self.val_fraction) < 1.0:
            raise SpkrecError(f"--val-fraction must be in [0, 1), got {self.val_fraction}")

    def _arch_config(self):
        return {k: getattr(self, k) for k in self.ARCH_PARAMS}

    def _train_config(self):
        return {k: getattr(self, k) for k in self.ARCH_PARAMS + self.TRAIN_PARAMS}

    # ------------------------------------------------------------------ data
    @staticmethod
    def _features(X, loader, config):
        """List of (T, D) float32 matrices: ``X`` itself, or ``loader(u)`` for the utterance ids ``X``."""
        if loader is None:
            mats = [np.asarray(x, dtype=np.float32) for x in X]
        else:
            mats = [m for part in map_chunks(_load_chunk, list(X), config, desc="load features", loader=loader)
                    for m in part]
        if not mats:
            raise SpkrecError("no training utterances")
        dims = {m.shape[1] if m.ndim == 2 else None for m in mats}
        if len(dims) != 1 or None in dims or any(m.shape[0] == 0 for m in mats):
            raise SpkrecError(f"training features must be non-empty (frames, dim) matrices of one dimension, got "
                              f"dimensions {sorted(d for d in dims if d is not None)}")
        return mats

    def _split(self, labels):
        """Speaker-level split: ``(train speakers, validation speakers)`` (sorted)."""
        speakers = sorted(set(labels), key=str)
        n_val = int(round(float(self.val_fraction) * len(speakers)))
        if self.val_fraction and n_val < 2:
            n_val = 2 if len(speakers) >= 4 else 0
        rng = np.random.default_rng([int(self.random_state), 7919])
        val = set(rng.choice(len(speakers), size=n_val, replace=False).tolist()) if n_val else set()
        return [s for i, s in enumerate(speakers) if i not in val], [s for i, s in enumerate(speakers) if i in val]

    # ------------------------------------------------------------------ training
    def _build(self, input_dim, num_classes):
        torch = require_torch()
        from spkrec.embeddings.losses import make_loss
        torch.manual_seed(int(self.random_state))
        encoder = self._make_encoder(int(input_dim))
        loss = make_loss(self.loss, int(self.embed_dim), num_classes, self.margin)
        return encoder, loss

    def fit(self, X, y, loader=None, checkpoint_dir=None, resume=True, config=SERIAL):
        """Train on utterances ``X`` with speaker labels ``y``.

        ``X``: list of ``(T, D)`` arrays, or (with ``loader``, a picklable ``utt -> (T, D)`` callable) a
        list of utterance ids, read once through :func:`spkrec.parallel.map_chunks` with ``config``.
        ``checkpoint_dir``: where ``checkpoint.pt`` (after each epoch, atomic) and ``loss_curve.png`` go;
        with ``resume`` an existing checkpoint of the same configuration is continued.
        """
        require_torch()
        self._check_params()
        device = self._device()
        with torch_threads(self.num_threads), deterministic(warn_only=device.type != "cpu"):
            try:
                return self._fit(X, y, loader, checkpoint_dir, resume, config, device)
            finally:
                if hasattr(self, "encoder_"):
                    self.encoder_.cpu()
                    self.loss_module_.cpu()

    def _device(self):
        """The training device: ``"cpu"``; ``"cuda"`` (an error without a GPU); ``"auto"``: cuda when available."""
        torch = require_torch()
        want = getattr(self, "device", "cpu") or "cpu"
        if want == "auto":
            want = "cuda" if torch.cuda.is_available() else "cpu"
        if want not in ("cpu", "cuda"):
            raise SpkrecError(f"unknown device {want!r}; use auto, cpu or cuda")
        if want == "cuda" and not torch.cuda.is_available():
            raise SpkrecError("--device cuda but torch sees no GPU (torch.cuda.is_available() is False); "
                              "use --device auto or cpu")
        return torch.device(want)

    def _init_weights(self, encoder):
        """Hook: change the freshly built encoder before training (the CNN's warm start)."""

    def _end_epoch(self, encoder, mats, spk_utts, n_batches, epoch, device):
        """Hook after each epoch's updates, before validation and the checkpoint (the CNN's BN statistics)."""

    def _batch(self, mats, utt_idx, rng):
        """Training batch ``(B, T, D)`` float32 and lengths ``(B,)``: one random crop per utterance."""
        return pad_batch([random_crop(mats[i], int(self.crop_frames), rng) for i in utt_idx])

    def _fit(self, X, y, loader, checkpoint_dir, resume, config, device):
        torch = require_torch()
        X, y = list(X), [str(s) for s in y]
        if len(X) != len(y):
            raise SpkrecError(f"{len(X)} utterances but {len(y)} speaker labels; give one label per utterance")
        mats = self._features(X, loader, config)
        train_spk, val_spk = self._split(y)
        if len(train_spk) < 2:
            raise SpkrecError(f"training needs at least 2 speakers after holding out {len(val_spk)} for validation")
        self.classes_ = train_spk
        self.val_speakers_ = val_spk
        index = {s: i for i, s in enumerate(train_spk)}
        spk_utts = [[] for _ in train_spk]
        for i, s in enumerate(y):
            if s in index:
                spk_utts[index[s]].append(i)
        val_idx = [i for i, s in enumerate(y) if s not in index]
        n_train = sum(len(u) for u in spk_utts)
        seed_everything(self.random_state)
        encoder, loss_module = self._build(mats[0].shape[1], len(train_spk))
        mean, std = _frame_stats(mats[i] for u in spk_utts for i in u)
        encoder.input_mean.copy_(torch.from_numpy(mean))
        encoder.input_std.copy_(torch.from_numpy(std))
        self._init_weights(encoder)
        self._pool = [i for u in spk_utts for i in u]      # training utterances (the CNN's babble source)
        encoder.to(device)
        loss_module.to(device)
        params = list(encoder.parameters()) + list(loss_module.parameters())
        optimizer = torch.optim.Adam(params, lr=float(self.lr))
        self.encoder_, self.loss_module_, self.history_ = encoder, loss_module, []
        self.meta_ = getattr(self, "meta_", {})
        start = 0
        ckpt_path = os.path.join(checkpoint_dir, CHECKPOINT) if checkpoint_dir else None
        if ckpt_path and resume and os.path.exists(ckpt_path):
            start = self._restore(ckpt_path, optimizer)
        per_batch = int(self.batch_speakers) * int(self.batch_utts)
        n_batches = int(self.batches_per_epoch or math.ceil(n_train / per_batch))
        for epoch in range(start, int(self.epochs)):
            t0 = time.time()
            rng = np.random.default_rng([int(self.random_state), epoch])
            encoder.train()
            total = 0.0
            for utt_idx, labels in nm_batches(spk_utts, self.batch_speakers, self.batch_utts, n_batches, rng):
                batch, lengths = self._batch(mats, utt_idx, rng)
                raw = encoder.embed_raw(torch.from_numpy(batch).to(device), torch.from_numpy(lengths))
                loss = loss_module(raw, torch.from_numpy(labels).to(device))
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP)
                optimizer.step()
                total += float(loss.detach())
            if not math.isfinite(total):
                raise SpkrecError(f"training diverged at epoch {epoch + 1} (loss {total}); lower --lr")
            self._end_epoch(encoder, mats, spk_utts, n_batches, epoch, device)
            val_eer = (self._validation_eer([mats[i] for i in val_idx], [y[i] for i in val_idx])
                       if val_idx else None)
            self.history_.append({"epoch": epoch + 1, "loss": total / n_batches, "val_eer": val_eer,
                                  "seconds": time.time() - t0})
            log.info("epoch %d/%d: loss %.4f%s (%.1f s)", epoch + 1, self.epochs, total / n_batches,
                     "" if val_eer is None else f", validation EER {100 * val_eer:.2f} %", time.time() - t0)
            if checkpoint_dir:
                save_torch_atomic(self._state(optimizer, epoch + 1), ckpt_path)
                plot_history(self.history_, os.path.join(checkpoint_dir, LOSS_CURVE))
        encoder.eval()
        del self._pool
        return self

    def _validation_eer(self, mats, labels):
        from spkrec.eval.metrics import eer
        from spkrec.embeddings.extract import embed_utterances
        if len(set(labels)) < 2:
            return None
        emb = embed_utterances(self.encoder_, mats, self.window, self.shift)
        iu = np.triu_indices(len(mats), k=1)
        lab = np.asarray(labels)
        return float(eer((emb @ emb.T)[iu], (lab[:, None] == lab[None, :])[iu])[0])

    def _state(self, optimizer=None, epoch=None):
        state = {"kind": self.KIND, "format_version": FORMAT_VERSION, "config": self._train_config(),
                 "input_dim": int(self.encoder_.input_dim), "classes": list(self.classes_),
                 "val_speakers": list(self.val_speakers_), "encoder": self.encoder_.state_dict(),
                 "loss": self.loss_module_.state_dict(), "history": list(self.history_),
                 "window": int(self.window), "shift": int(self.shift), "meta": dict(getattr(self, "meta_", {})),
                 "params": self.get_params()}
        if optimizer is not None:
            state["optimizer"] = optimizer.state_dict()
            state["epoch"] = int(epoch)
        return state

    def _restore(self, path, optimizer):
        state = load_torch(path, "checkpoint")
        if not isinstance(state, dict) or state.get("kind") != self.KIND:
            kind = state.get("kind") if isinstance(state, dict) else None
            raise SpkrecError(f"{path}: not a spkrec {self.NAME} checkpoint (it is {kind or 'something else'}); "
                              "remove it or use another output dir")
        mine = self._train_config()
        if state["config"] != mine or state["classes"] != list(self.classes_):
            diff = sorted(k for k in mine if state["config"].get(k) != mine[k]) or ["training speakers"]
            raise SpkrecError(f"{path}: checkpoint was trained with other settings ({', '.join(diff)}); "
                              "remove it to start again or use another output dir")
        self.encoder_.load_state_dict(state["encoder"])
        self.loss_module_.load_state_dict(state["loss"])
        optimizer.load_state_dict(state["optimizer"])
        self.history_ = list(state["history"])
        log.info("resuming from %s after epoch %d", path, state["epoch"])
        return int(state["epoch"])

    # ------------------------------------------------------------------ inference
    def _check_fitted(self):
        if not hasattr(self, "encoder_"):
            raise SpkrecError(f"this {type(self).__name__} is not trained; call fit() or load a model first")

    def transform(self, X, loader=None, config=SERIAL):
        """Unit-length embeddings ``(n, embed_dim)`` float32 (sliding windows averaged, re-normalised)."""
        from spkrec.embeddings.extract import embed_with_loader, embed_utterances
        self._check_fitted()
        if loader is not None:
            return embed_with_loader(self, loader, X, config=config)
        with torch_threads(self.num_threads):
            return embed_utterances(self.encoder_, list(X), int(self.window), int(self.shift))

    def predict_log_proba(self, X, loader=None, config=SERIAL):
        """Log-posteriors ``(n, len(classes_))`` of the softmax classifier (``loss="softmax"`` models only)."""
        torch = require_torch()
        from spkrec.embeddings.extract import embed_with_loader, embed_utterances
        self._check_fitted()
        if self.loss not in ("softmax", "aam"):
            raise SpkrecError(f"this model was trained with the {self.loss} loss and has no speaker classifier; "
                              "train it with --loss softmax (or aam)")
        if loader is not None:
            raw = embed_with_loader(self, loader, X, raw=True, config=config)
        else:
            with torch_threads(self.num_threads):
                raw = embed_utterances(self.encoder_, list(X), int(self.window), int(self.shift), raw=True)
        with torch.inference_mode():
            return torch.log_softmax(self.loss_module_.logits(torch.from_numpy(raw)), dim=1).numpy()

    def predict(self, X, loader=None, config=SERIAL):
        """Most probable training speaker of each utterance."""
        return [self.classes_[j] for j in np.argmax(self.predict_log_proba(X, loader, config), axis=1)]

    def score(self, X, y):
        """``1 - EER`` of cosine scores over all pairs of the utterances ``X`` (higher is better)."""
        from spkrec.eval.metrics import eer
        emb = self.transform(X)
        lab = np.asarray([str(s) for s in y])
        iu = np.triu_indices(len(lab), k=1)
        return 1.0 - float(eer((emb @ emb.T)[iu], (lab[:, None] == lab[None, :])[iu])[0])

    # ------------------------------------------------------------------ files
    def save(self, path):
        """Write the trained model (weights, configuration, history) atomically with ``torch.save``."""
        self._check_fitted()
        save_torch_atomic(self._state(), path)

    @classmethod
    def load(cls, path):
        """Load a model written by :meth:`save` (or a checkpoint) with ``weights_only=True``."""
        state = load_torch(path)
        if not isinstance(state, dict) or state.get("kind") != cls.KIND:
            kind = state.get("kind") if isinstance(state, dict) else None
            raise SpkrecError(f"{path}: not a spkrec {cls.NAME} model (it is {kind or 'something else'}); give the "
                              f"final.pt written by `spkrec {cls.TRAIN_VERB}`")
        if state.get("format_version", 0) > FORMAT_VERSION:
            raise SpkrecError(f"{path}: written by a newer spkrec; upgrade spkrec")
        params = state.get("params") or dict(state["config"], window=state["window"], shift=state["shift"])
        model = cls(**params)
        model.classes_ = list(state["classes"])
        model.val_speakers_ = list(state["val_speakers"])
        model.encoder_, model.loss_module_ = model._build(state["input_dim"], len(model.classes_))
        model.encoder_.load_state_dict(state["encoder"])
        model.loss_module_.load_state_dict(state["loss"])
        model.encoder_.eval()
        model.history_ = list(state["history"])
        model.meta_ = dict(state.get("meta", {}))
        return model


def plot_history(history, path):
    """Loss per epoch (left axis) and validation EER % (right axis, when available) as a PNG, atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from spkrec.eval.plots import save_figure
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["loss"] for h in history], "o-", color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    ax.grid(True, alpha=0.3)
    val = [(h["epoch"], 100 * h["val_eer"]) for h in history if h.get("val_eer") is not None]
    if val:
        ax2 = ax.twinx()
        ax2.plot(*zip(*val), "s--", color="tab:red")
        ax2.set_ylabel("validation EER %", color="tab:red")
    save_figure(fig, path)
    return fig


class RNNEmbedder(EmbedderBase):
    """LSTM/GRU speaker-embedding extractor with a selectable training loss.

    Parameters
    ----------
    cell, num_layers, hidden_size, bidirectional, pooling, embed_dim :
        Encoder architecture (:class:`spkrec.embeddings.model.SpeakerEncoder`).
    loss : ``"softmax"``, ``"triplet"``, ``"contrastive"`` or ``"ge2e"``; ``margin`` for triplet/contrastive.
    epochs : training epochs; an epoch has ``batches_per_epoch`` batches (default: enough batches of
        ``batch_speakers x batch_utts`` crops to visit every training utterance about once).
    crop_frames : training crop length in frames (200 = 2 s at a 10 ms shift).
    lr : Adam learning rate.
    val_fraction : fraction of the speakers held out for the per-epoch validation EER (0: none).
    window, shift : sliding-window length and shift in frames for :meth:`transform`.
    random_state : seed of everything.
    num_threads : torch intra-op threads while training and embedding (default 1; ``None``: torch's
        setting); restored afterwards. Use ``config`` (``--nj``) to embed utterances in parallel.

    Fitted attributes: ``encoder_`` (torch module), ``loss_module_``, ``classes_`` (training speakers),
    ``history_`` (per epoch: ``epoch``, ``loss``, ``val_eer`` or ``None``, ``seconds``), ``val_speakers_``,
    ``meta_`` (free-form JSON-able dict saved with the model, e.g. feature options).
    """

    def __init__(self, cell="lstm", num_layers=2, hidden_size=128, bidirectional=False, pooling="mean",
                 embed_dim=128, loss="softmax", margin=None, epochs=10, crop_frames=200, batch_speakers=16,
                 batch_utts=4, batches_per_epoch=None, lr=1e-3, val_fraction=0.1, window=200, shift=100,
                 random_state=0, num_threads=1):
        self.cell, self.num_layers, self.hidden_size = cell, num_layers, hidden_size
        self.bidirectional, self.pooling, self.embed_dim = bidirectional, pooling, embed_dim
        self.loss, self.margin, self.epochs, self.crop_frames = loss, margin, epochs, crop_frames
        self.batch_speakers, self.batch_utts = batch_speakers, batch_utts
        self.batches_per_epoch = batches_per_epoch
        self.lr, self.val_fraction, self.window, self.shift = lr, val_fraction, window, shift
        self.random_state, self.num_threads = random_state, num_threads

    def _check_arch(self):
        from spkrec.embeddings.model import check_architecture
        check_architecture(self.cell, self.num_layers, self.hidden_size, self.pooling, self.embed_dim)

    def _make_encoder(self, input_dim):
        from spkrec.embeddings.model import SpeakerEncoder
        return SpeakerEncoder(input_dim, self.cell, self.num_layers, self.hidden_size, self.bidirectional,
                              self.pooling, self.embed_dim)
