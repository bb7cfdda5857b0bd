"""CNN speaker encoders over log-mel filter banks: VGG-like, thin ResNet-18/34, ResNet-50; temporal pooling.

Frames ``(B, T, D)`` (``D`` filter-bank bins) are standardised, seen as a one-channel image ``(B, 1, D, T)``,
passed through 2-D convolutions that downsample both axes by ``time_stride`` in all, flattened to frame
features ``(B, C * D', T')`` and pooled over time (average, statistics or multi-head self-attention), then
an embedding layer (``projection``, then batch normalisation) gives the raw embedding; :meth:`CNNEncoder.forward` normalises it.

Importing this module imports PyTorch (:class:`~spkrec.errors.SpkrecError` with the install hint without).
"""
from spkrec.embeddings._torch import require_torch
from spkrec.errors import SpkrecError

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

ARCHS = ("vgg", "resnet18", "resnet34", "resnet50")
CNN_POOLINGS = ("avg", "stats", "attention")
_BLOCKS = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3], "resnet50": [3, 4, 6, 3]}


class SelfAttentivePooling(nn.Module):
    """Multi-head self-attentive pooling (Lin et al. 2017; Zhu et al. 2018 for speaker embeddings).

    ``A = softmax_t(W2 relu(W1 h_t))`` with ``W1 (attention_dim, C)``, ``W2 (heads, attention_dim)``: one
    distribution over the valid frames per head (``A[b, k, :]`` sums to 1, 0 on padding); output the
    heads' weighted means ``[sum_t A[b, k, t] h_t]_k`` concatenated, ``(B, heads * C)``.
    """

    def __init__(self, dim, heads=4, attention_dim=64):
        super().__init__()
        self.hidden = nn.Linear(int(dim), int(attention_dim))
        self.score = nn.Linear(int(attention_dim), int(heads), bias=False)

    def weights(self, h, mask=None):
        """Attention weights ``(B, heads, T)`` of frame features ``h (B, T, C)``."""
        e = self.score(torch.relu(self.hidden(h))).transpose(1, 2)           # (B, heads, T)
        if mask is not None:
            e = e.masked_fill(~mask[:, None, :], float("-inf"))
        return torch.softmax(e, dim=2)

    def forward(self, h, mask=None):
        a = self.weights(h, mask)
        return torch.einsum("bkt,btc->bkc", a, h).reshape(h.shape[0], -1)


def stats_pooling(h, mask=None):
    """Mean and standard deviation over the valid frames of ``h (B, T, C)`` -> ``(B, 2C)`` (std floored at 1e-5)."""
    if mask is None:
        mask = torch.ones(h.shape[:2], dtype=torch.bool, device=h.device)
    m = mask.unsqueeze(-1).to(h.dtype)
    n = m.sum(dim=1)
    mean = (h * m).sum(dim=1) / n
    var = (((h - mean[:, None, :]) ** 2) * m).sum(dim=1) / n
    return torch.cat([mean, torch.sqrt(var.clamp(min=1e-10))], dim=1)


def avg_pooling(h, mask=None):
    """Mean over the valid frames of ``h (B, T, C)`` -> ``(B, C)``."""
    if mask is None:
        return h.mean(dim=1)
    m = mask.unsqueeze(-1).to(h.dtype)
    return (h * m).sum(dim=1) / m.sum(dim=1)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        out = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x)))))
        return torch.relu(out + (x if self.down is None else self.down(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, width, stride):
        super().__init__()
        cout = width * 4
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.down = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                     if stride != 1 or cin != cout else None)

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return torch.relu(out + (x if self.down is None else self.down(x)))


def _trunk(arch, channels):
    """The convolutional trunk and its output channels; every trunk halves both axes 3 times (stride 8)."""
    c = int(channels)
    if arch == "vgg":                       # 4 blocks of conv-BN-ReLU x2, the first 3 followed by 2x2 max-pooling
        layers, cin = [], 1
        for i, cout in enumerate((c, 2 * c, 4 * c, 8 * c)):
            for j in range(2):
                layers += [nn.Conv2d(cin if j == 0 else cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout),
                           nn.ReLU()]
            if i < 3:
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            cin = cout
        return nn.Sequential(*layers), 8 * c
    block = Bottleneck if arch == "resnet50" else BasicBlock
    layers = [nn.Conv2d(1, c, 3, 1, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
    cin = c
    for i, n in enumerate(_BLOCKS[arch]):
        width = c * 2 ** i
        for j in range(n):
            layers.append(block(cin, width, 2 if (j == 0 and i > 0) else 1))
            cin = width * block.expansion
    return nn.Sequential(*layers), cin


def _down(n, times=3):
    """Length after ``times`` stride-2 steps (kernel 3, padding 1, or ceil-mode 2x2 pooling): ceil(n / 2) each."""
    for _ in range(times):
        n = (n + 1) // 2
    return n


class CNNEncoder(nn.Module):
    """Filter banks ``(B, T, D)`` with valid lengths ``(B,)`` -> L2-normalised embeddings ``(B, embed_dim)``.

    Parameters
    ----------
    input_dim : int, number of filter-bank bins D (at least 8).
    arch : ``"vgg"``, ``"resnet18"``, ``"resnet34"`` (thin ResNets: ``channels``, 2x, 4x, 8x channels in the
        four stages) or ``"resnet50"`` (bottleneck blocks, 4x wider outputs).
    channels : channels of the first stage (8 or 16 for a thin ResNet; 32 or 64 for a full-size one).
    pooling : ``"avg"`` (temporal average), ``"stats"`` (mean and standard deviation) or ``"attention"``
        (multi-head self-attentive pooling with ``heads`` heads).
    embed_dim : embedding dimension (the ``projection`` layer, followed by ``embed_norm``, a BatchNorm1d:
        without it the embeddings of an AAM-trained CNN share one dominant direction, cosine ~0.9999).
    cmn : subtract each utterance's (window's) mean of every bin first (cepstral-mean normalisation of the
        log-mel features), then divide by the training data's ``input_std``; without, standardise with the
        ``input_mean``/``input_std`` buffers (set by the trainer).

    The trunk downsamples time by ``time_stride = 8``: inputs shorter than ``min_frames = 8`` frames are
    refused (:func:`spkrec.embeddings.extract.embed_utterances` pads them by repetition first).
    """

    time_stride = 8
    min_frames = 8
    exact_lengths = True            # padded frames change convolution outputs: batch only equal lengths

    def __init__(self, input_dim, arch="resnet34", channels=8, pooling="attention", embed_dim=128, heads=4,
                 attention_dim=64, cmn=True):
        super().__init__()
        check_cnn_architecture(arch, channels, pooling, embed_dim, heads, input_dim)
        self.arch, self.pooling, self.cmn = arch, pooling, bool(cmn)
        self.trunk, cout = _trunk(arch, channels)
        frame_dim = cout * _down(int(input_dim))
        self.attention = SelfAttentivePooling(frame_dim, heads, attention_dim) if pooling == "attention" else None
        pooled = {"avg": frame_dim, "stats": 2 * frame_dim, "attention": int(heads) * frame_dim}[pooling]
        self.projection = nn.Linear(pooled, int(embed_dim))
        self.embed_norm = nn.BatchNorm1d(int(embed_dim))   # centres the embeddings (ReLU features share a mean)
        self.register_buffer("input_mean", torch.zeros(int(input_dim)))
        self.register_buffer("input_std", torch.ones(int(input_dim)))

    @property
    def input_dim(self):
        return self.input_mean.shape[0]

    def frame_features(self, x, lengths=None):
        """Trunk outputs as frame features ``(B, T', C * D')`` and their valid mask ``(B, T')``."""
        if x.dim() != 3 or x.shape[2] != self.input_dim:
            raise SpkrecError(f"the encoder expects (batch, frames, {self.input_dim}) features, got "
                              f"{tuple(x.shape)}; use the features the model was trained on")
        B, T, _ = x.shape
        if T < self.min_frames:
            raise SpkrecError(f"{T} frames are fewer than the CNN's receptive minimum of {self.min_frames} "
                              "frames; pad the utterance or drop it")
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        lengths = torch.as_tensor(lengths, dtype=torch.long).to(x.device)
        valid = (torch.arange(T, device=x.device)[None, :] < lengths[:, None]).unsqueeze(-1).to(x.dtype)
        if self.cmn:
            mean = (x * valid).sum(dim=1, keepdim=True) / lengths[:, None, None].to(x.dtype)
            x = (x - mean) / self.input_std
        else:
            x = (x - self.input_mean) / self.input_std
        x = x * valid
        out = self.trunk(x.transpose(1, 2).unsqueeze(1))                     # (B, C, D', T')
        h = out.flatten(1, 2).transpose(1, 2)                                # (B, T', C * D')
        t_out = h.shape[1]
        out_len = (lengths + self.time_stride - 1) // self.time_stride
        mask = torch.arange(t_out, device=x.device)[None, :] < out_len.clamp(min=1, max=t_out)[:, None]
        return h, mask

    def embed_raw(self, x, lengths=None):
        """Embedding layer output before normalisation, ``(B, embed_dim)`` (the classifier's input)."""
        h, mask = self.frame_features(x, lengths)
        if self.pooling == "avg":
            pooled = avg_pooling(h, mask)
        elif self.pooling == "stats":
            pooled = stats_pooling(h, mask)
        else:
            pooled = self.attention(h, mask)
        return self.embed_norm(self.projection(pooled))

    def forward(self, x, lengths=None):
        """L2-normalised embeddings ``(B, embed_dim)``."""
        return F.normalize(self.embed_raw(x, lengths), dim=1)


def check_cnn_architecture(arch, channels, pooling, embed_dim, heads=4, input_dim=None):
    """Raise :class:`SpkrecError` for an unusable CNN architecture option."""
    if arch not in ARCHS:
        raise SpkrecError(f"unknown CNN architecture {arch!r}; use one of {', '.join(ARCHS)}")
    if pooling not in CNN_POOLINGS:
        raise SpkrecError(f"unknown CNN pooling {pooling!r}; use one of {', '.join(CNN_POOLINGS)}")
    if int(channels) < 1 or int(embed_dim) < 1 or int(heads) < 1:
        raise SpkrecError(f"--channels, --embed-dim and --heads must be positive, got {channels}, {embed_dim}, {heads}")
    if input_dim is not None and int(input_dim) < 8:
        raise SpkrecError(f"the CNN needs at least 8 filter-bank bins per frame, got {input_dim}; "
                          "compute fbank features with --num-mel-bins=40 (or 64)")
