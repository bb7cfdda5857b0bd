"""``CNNEmbedder``: a CNN speaker encoder (VGG / thin ResNet / ResNet-50) trained by the shared trainer.

Training, checkpoints, resume, validation EER, extraction and files are those of
:class:`spkrec.embeddings.train.EmbedderBase` (as for :class:`~spkrec.embeddings.train.RNNEmbedder`);
this class builds a :class:`~spkrec.embeddings.cnn_model.CNNEncoder`, draws fixed-length crops with the
optional augmentation of :mod:`spkrec.embeddings.augment`, trains on a GPU when asked, and can start from
the weights of another CNN model (``warm_start``: the closed-set classifier fine-tunes the background one).
"""
import logging

import numpy as np

from spkrec.embeddings._torch import load_torch
from spkrec.embeddings.augment import add_babble, fixed_crop, speed_perturb
from spkrec.embeddings.train import TRAIN_PARAMS, EmbedderBase
from spkrec.errors import SpkrecError

log = logging.getLogger("spkrec")

CNN_KIND = "spkrec-cnn-embedder"


class CNNEmbedder(EmbedderBase):
    """CNN speaker-embedding extractor over log-mel filter banks (a scikit-learn estimator).

    Parameters
    ----------
    arch, channels, pooling, heads, embed_dim, cmn :
        Encoder (:class:`spkrec.embeddings.cnn_model.CNNEncoder`): ``"vgg"``, ``"resnet18"``, ``"resnet34"``
        or ``"resnet50"``; first-stage channels; ``"avg"``, ``"stats"`` or ``"attention"`` pooling with
        ``heads`` heads; embedding dimension; per-window mean normalisation of the input.
    loss : ``"aam"`` (additive angular margin softmax, default), ``"softmax"``, ``"triplet"``,
        ``"contrastive"`` or ``"ge2e"``; ``margin`` (AAM default 0.2).
    epochs, crop_frames, batch_speakers, batch_utts, batches_per_epoch, lr, val_fraction :
        as :class:`~spkrec.embeddings.train.RNNEmbedder`; every crop has exactly ``crop_frames`` frames
        (a shorter utterance is repeated).
    babble : probability that a crop gets babble: ``babble_utts`` other training utterances added at a
        uniform random SNR in ``babble_snr`` dB (log-mel features only; see :mod:`~spkrec.embeddings.augment`).
    speed : probability that a crop is speed (tempo) perturbed by a factor drawn from ``speed_factors``.
    window, shift : extraction windows in frames (default 300, no overlap: the CNN sees whole 3 s windows).
    device : ``"auto"`` (CUDA when ``torch.cuda.is_available()``), ``"cpu"`` or ``"cuda"`` for training;
        inference runs on the CPU. CPU reruns with the same seed and threads are bit-identical.
    warm_start : path of a CNN model (``final.pt``) of the same architecture whose encoder weights start
        the training (the loss head is new), or ``None``.
    random_state, num_threads : seed; torch threads (default 1).

    Fitted attributes as :class:`~spkrec.embeddings.train.RNNEmbedder`: ``encoder_``, ``loss_module_``,
    ``classes_``, ``history_``, ``val_speakers_``, ``meta_``.
    """

    KIND = CNN_KIND
    NAME = "CNN"
    TRAIN_VERB = "train-cnn"
    ARCH_PARAMS = ("arch", "channels", "pooling", "heads", "embed_dim", "cmn")
    TRAIN_PARAMS = TRAIN_PARAMS + ("babble", "babble_utts", "babble_snr", "speed", "speed_factors", "warm_start")

    def __init__(self, arch="resnet18", channels=8, pooling="attention", heads=4, embed_dim=128, cmn=True,
                 loss="aam", margin=None, epochs=10, crop_frames=200, batch_speakers=16, batch_utts=4,
                 batches_per_epoch=None, lr=1e-3, val_fraction=0.1, babble=0.0, babble_utts=3,
                 babble_snr=(5.0, 20.0), speed=0.0, speed_factors=(0.9, 1.1), window=300, shift=300,
                 device="auto", warm_start=None, random_state=0, num_threads=1):
        self.arch, self.channels, self.pooling, self.heads = arch, channels, pooling, heads
        self.embed_dim, self.cmn, self.loss, self.margin = embed_dim, cmn, loss, margin
        self.epochs, self.crop_frames = epochs, crop_frames
        self.batch_speakers, self.batch_utts, self.batches_per_epoch = batch_speakers, batch_utts, batches_per_epoch
        self.lr, self.val_fraction = lr, val_fraction
        self.babble, self.babble_utts, self.babble_snr = babble, babble_utts, babble_snr
        self.speed, self.speed_factors = speed, speed_factors
        self.window, self.shift, self.device, self.warm_start = window, shift, device, warm_start
        self.random_state, self.num_threads = random_state, num_threads

    def _check_arch(self):
        from spkrec.embeddings.cnn_model import check_cnn_architecture
        check_cnn_architecture(self.arch, self.channels, self.pooling, self.embed_dim, self.heads)
        if not 0.0 <= float(self.babble) <= 1.0 or not 0.0 <= float(self.speed) <= 1.0:
            raise SpkrecError(f"--babble and --speed are probabilities in [0, 1], got {self.babble} and {self.speed}")
        lo, hi = (float(v) for v in self.babble_snr)
        if lo > hi or int(self.babble_utts) < 1:
            raise SpkrecError(f"--babble-snr needs LOW <= HIGH dB and --babble-utts >= 1, got {self.babble_snr}")
        if not self.speed_factors or any(float(f) <= 0 for f in self.speed_factors):
            raise SpkrecError(f"--speed-factors must be positive, got {self.speed_factors}")
        if int(self.crop_frames) < 8:
            raise SpkrecError(f"--crop-frames must be at least the CNN's 8 frames, got {self.crop_frames}")

    def _make_encoder(self, input_dim):
        from spkrec.embeddings.cnn_model import CNNEncoder
        return CNNEncoder(input_dim, self.arch, self.channels, self.pooling, self.embed_dim, self.heads,
                          cmn=self.cmn)

    def _init_weights(self, encoder):
        if not self.warm_start:
            return
        state = load_torch(self.warm_start, "warm-start model")
        kind = state.get("kind") if isinstance(state, dict) else None
        if kind != CNN_KIND:
            raise SpkrecError(f"{self.warm_start}: not a spkrec CNN model (it is {kind or 'something else'}); "
                              "--warm-start needs a final.pt of `spkrec train-cnn`")
        theirs = {k: state["config"].get(k) for k in self.ARCH_PARAMS}
        mine = self._arch_config()
        if theirs != mine or state["input_dim"] != encoder.input_dim:
            diff = sorted(k for k in mine if theirs[k] != mine[k]) or ["input_dim"]
            raise SpkrecError(f"{self.warm_start}: a CNN of another architecture ({', '.join(diff)} differ: "
                              f"{ {k: theirs[k] for k in diff if k in theirs} }); use the same --arch/--channels/"
                              "--pooling/--heads/--embed-dim and features")
        encoder.load_state_dict(state["encoder"])
        log.info("encoder weights from %s", self.warm_start)

    def _end_epoch(self, encoder, mats, spk_utts, n_batches, epoch, device):
        """Re-estimate every batch-norm layer's running statistics with the epoch's final weights.

        A forward pass (no gradients) over an epoch of fresh crops (seeded by ``(random_state, epoch, 1)``)
        with cumulative averaging ("precise BN"): with a few batches per epoch the default running
        averages (momentum 0.1) lag far behind the weights, and inference in eval mode then gives
        embeddings that all point one way.
        """
        from spkrec.embeddings.sampling import nm_batches
        torch = __import__("torch")
        bns = [m for m in encoder.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        momenta = [m.momentum for m in bns]
        for m in bns:
            m.reset_running_stats()
            m.momentum = None
        rng = np.random.default_rng([int(self.random_state), epoch, 1])
        encoder.train()
        with torch.no_grad():
            for utt_idx, _ in nm_batches(spk_utts, self.batch_speakers, self.batch_utts, n_batches, rng):
                batch, lengths = self._batch(mats, utt_idx, rng)
                encoder.embed_raw(torch.from_numpy(batch).to(device), torch.from_numpy(lengths))
        for m, mom in zip(bns, momenta):
            m.momentum = mom

    def _batch(self, mats, utt_idx, rng):
        """``(B, crop_frames, D)`` crops with the optional speed perturbation and babble; lengths all equal."""
        n = int(self.crop_frames)
        crops = []
        for i in utt_idx:
            x = mats[i]
            if self.speed and rng.random() < float(self.speed):
                factor = float(self.speed_factors[int(rng.integers(len(self.speed_factors)))])
                x = speed_perturb(fixed_crop(x, max(n, int(round(n * factor))), rng), factor)
            crop = fixed_crop(x, n, rng)
            if self.babble and rng.random() < float(self.babble):
                pool = self._pool
                others = []
                for _ in range(int(self.babble_utts)):
                    j = int(pool[int(rng.integers(len(pool)))])
                    if j == i:
                        j = int(pool[(pool.index(j) + 1) % len(pool)])
                    others.append(fixed_crop(mats[j], n, rng))
                lo, hi = (float(v) for v in self.babble_snr)
                crop = add_babble(crop, others, rng.uniform(lo, hi))
            crops.append(np.asarray(crop, dtype=np.float32))
        return np.stack(crops), np.full(len(crops), n, dtype=np.int64)


def load_embedder(path):
    """Load a ``final.pt`` of ``spkrec train-rnn`` or ``train-cnn`` as the matching embedder."""
    from spkrec.embeddings.train import KIND, RNNEmbedder
    state = load_torch(path)
    kind = state.get("kind") if isinstance(state, dict) else None
    if kind == CNN_KIND:
        return CNNEmbedder.load(path)
    if kind == KIND:
        return RNNEmbedder.load(path)
    raise SpkrecError(f"{path}: not a spkrec speaker-embedding model (RNN or CNN); give the final.pt of "
                      "`spkrec train-rnn` or `spkrec train-cnn`")
