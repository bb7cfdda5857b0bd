"""LSTM/GRU speaker encoder: frames -> recurrent layers -> masked temporal pooling -> projection -> unit vector.

Importing this module imports PyTorch (it raises :class:`~spkrec.errors.SpkrecError` with the install hint
when PyTorch is missing); ``spkrec.embeddings`` imports it only when a model is needed.
"""
from spkrec.embeddings._torch import require_torch
from spkrec.errors import SpkrecError

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

CELLS = ("lstm", "gru")
POOLINGS = ("mean", "last", "attentive")


def length_mask(lengths, max_len):
    """``(B, max_len)`` bool mask, True on the first ``lengths[b]`` frames of row ``b``."""
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al. 2018): attention-weighted mean and standard deviation.

    ``e_t = v^T tanh(W h_t + b)``; ``alpha = softmax_t(e)`` over the valid frames only; output
    ``[sum_t alpha_t h_t, sqrt(sum_t alpha_t h_t^2 - mean^2)]`` of shape ``(B, 2H)``.
    """

    def __init__(self, dim, attention_dim=64):
        super().__init__()
        self.hidden = nn.Linear(dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1, bias=False)

    def forward(self, h, mask):
        e = self.score(torch.tanh(self.hidden(h))).squeeze(-1)            # (B, T)
        e = e.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(e, dim=1).unsqueeze(-1)                      # (B, T, 1), 0 on padding
        mean = (alpha * h).sum(dim=1)
        var = (alpha * h * h).sum(dim=1) - mean * mean
        return torch.cat([mean, torch.sqrt(var.clamp(min=1e-6))], dim=1)


class SpeakerEncoder(nn.Module):
    """Frames ``(B, T, D)`` with valid lengths ``(B,)`` -> L2-normalised embeddings ``(B, embed_dim)``.

    Input frames are first standardised with fixed per-dimension ``input_mean``/``input_std`` buffers
    (set from the training data by the trainer; identity by default). Padded frames never influence the
    result: sequences are packed for the recurrent layers when lengths differ and pooling is masked.

    Parameters
    ----------
    input_dim : int, feature dimension D.
    cell : ``"lstm"`` or ``"gru"``.
    num_layers : 1-3 recurrent layers.
    hidden_size : units per layer and direction.
    bidirectional : run each layer in both directions (pooled features have ``2 * hidden_size`` dims).
    pooling : ``"mean"`` (masked average), ``"last"`` (final hidden state of the last layer; with
        ``bidirectional`` the forward state at the last valid frame and the backward state at frame 0),
        or ``"attentive"`` (attentive statistics pooling).
    embed_dim : output dimension.
    """

    def __init__(self, input_dim, cell="lstm", num_layers=2, hidden_size=128, bidirectional=False,
                 pooling="mean", embed_dim=128, attention_dim=64):
        super().__init__()
        check_architecture(cell, num_layers, hidden_size, pooling, embed_dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.cell, self.pooling, self.bidirectional = cell, pooling, bool(bidirectional)
        self.rnn = rnn(int(input_dim), int(hidden_size), int(num_layers), batch_first=True,
                       bidirectional=self.bidirectional)
        out_dim = int(hidden_size) * (2 if self.bidirectional else 1)
        self.attention = AttentiveStatsPooling(out_dim, attention_dim) if pooling == "attentive" else None
        self.projection = nn.Linear(2 * out_dim if pooling == "attentive" else out_dim, int(embed_dim))
        self.register_buffer("input_mean", torch.zeros(int(input_dim)))
        self.register_buffer("input_std", torch.ones(int(input_dim)))

    @property
    def input_dim(self):
        return self.input_mean.shape[0]

    def embed_raw(self, x, lengths=None):
        """Projection before normalisation, ``(B, embed_dim)`` (the softmax classifier's input)."""
        if x.dim() != 3 or x.shape[2] != self.input_dim:
            raise SpkrecError(f"the encoder expects (batch, frames, {self.input_dim}) features, got "
                              f"{tuple(x.shape)}; use the features the model was trained on")
        B, T, _ = x.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
        x = (x - self.input_mean) / self.input_std
        packed = bool((lengths != T).any())
        if packed:
            x = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, state = self.rnn(x)
        if packed:
            out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
        if self.pooling == "last":
            h_n = state[0] if self.cell == "lstm" else state                    # (layers*dirs, B, H)
            pooled = torch.cat([h_n[-2], h_n[-1]], dim=1) if self.bidirectional else h_n[-1]
        else:
            mask = length_mask(lengths, T)
            if self.pooling == "mean":
                m = mask.unsqueeze(-1).to(out.dtype)
                pooled = (out * m).sum(dim=1) / lengths[:, None].to(out.dtype)
            else:
                pooled = self.attention(out, mask)
        return self.projection(pooled)

    def forward(self, x, lengths=None):
        """L2-normalised embeddings ``(B, embed_dim)``."""
        return F.normalize(self.embed_raw(x, lengths), dim=1)


def check_architecture(cell, num_layers, hidden_size, pooling, embed_dim):
    """Raise :class:`SpkrecError` for an unusable architecture option."""
    if cell not in CELLS:
        raise SpkrecError(f"unknown cell {cell!r}; use one of {', '.join(CELLS)}")
    if pooling not in POOLINGS:
        raise SpkrecError(f"unknown pooling {pooling!r}; use one of {', '.join(POOLINGS)}")
    if not 1 <= int(num_layers) <= 3:
        raise SpkrecError(f"--layers must be 1, 2 or 3, got {num_layers}")
    if int(hidden_size) < 1 or int(embed_dim) < 1:
        raise SpkrecError(f"--hidden and --embed-dim must be positive, got {hidden_size} and {embed_dim}")
