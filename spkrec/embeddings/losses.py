"""Training objectives for speaker encoders. Each takes raw projections ``(B, E)`` and integer labels ``(B,)``.

* ``softmax``: cross-entropy of a linear classifier over the training speakers on the raw projection
  (the embedding is the penultimate layer, as for d-/x-vectors).
* ``triplet``: FaceNet's triplet loss on unit vectors with online semi-hard mining.
* ``contrastive``: Hadsell et al.'s contrastive loss on all pairs of the batch.
* ``ge2e``: generalised end-to-end softmax loss (Wan et al. 2018) on an N speakers x M utterances batch.
* ``aam``: additive angular margin softmax (ArcFace, Deng et al. 2019): cross-entropy of
  ``s * cos(theta_y + m)`` for the true speaker and ``s * cos(theta_j)`` for the others.
"""
import math

from spkrec.embeddings._torch import require_torch
from spkrec.errors import SpkrecError

torch = require_torch()
nn = torch.nn
F = torch.nn.functional

LOSSES = ("softmax", "triplet", "contrastive", "ge2e", "aam")


def squared_distances(e):
    """``(B, B)`` squared Euclidean distances between the rows of ``e`` (clamped at 0)."""
    sq = (e * e).sum(dim=1)
    return (sq[:, None] + sq[None, :] - 2.0 * e @ e.T).clamp(min=0.0)


class SoftmaxLoss(nn.Module):
    """Mean cross-entropy of ``classifier(raw)`` against the speaker index."""

    def __init__(self, embed_dim, num_classes):
        super().__init__()
        if int(num_classes) < 2:
            raise SpkrecError(f"the softmax loss needs at least 2 training speakers, got {num_classes}")
        self.classifier = nn.Linear(int(embed_dim), int(num_classes))

    def logits(self, raw):
        return self.classifier(raw)

    def forward(self, raw, labels):
        return F.cross_entropy(self.classifier(raw), labels)


class TripletLoss(nn.Module):
    """Mean over all anchor-positive pairs ``(a, p)``, ``a != p``, of ``max(0, d(a,p) - d(a,n) + margin)``.

    ``d`` is the squared Euclidean distance between L2-normalised embeddings (``2 - 2 cos``). The
    negative ``n`` of each pair is mined online (semi-hard): the closest negative farther than the
    positive (``d(a,n) > d(a,p)``); if no negative is farther, the farthest negative.
    """

    def __init__(self, margin=0.2):
        super().__init__()
        self.margin = float(margin)

    def forward(self, raw, labels):
        d = squared_distances(F.normalize(raw, dim=1))
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool)
        pos = same & ~eye                                                   # (a, p) pairs
        if not pos.any() or same.all():
            raise SpkrecError("the triplet loss needs at least 2 utterances of a speaker and 2 speakers per batch")
        d_ap = d[:, :, None]                                                # (a, p, 1)
        d_an = d[:, None, :]                                                # (a, 1, n)
        neg = ~same[:, None, :]                                             # (a, 1, n)
        farther = neg & (d_an > d_ap)                                       # semi-hard candidates
        inf = torch.tensor(float("inf"), dtype=d.dtype)
        closest_farther = torch.where(farther, d_an, inf).amin(dim=2)       # (a, p)
        farthest = torch.where(neg, d_an, -inf).amax(dim=2).expand_as(closest_farther)
        chosen = torch.where(farther.any(dim=2), closest_farther, farthest)
        losses = F.relu(d - chosen + self.margin)
        return losses[pos].mean()


class ContrastiveLoss(nn.Module):
    """Contrastive loss over all pairs ``i < j``, classes balanced.

    With ``d`` the Euclidean distance between L2-normalised embeddings:
    ``0.5 * mean_{same}(d^2) + 0.5 * mean_{different}(max(0, margin - d)^2)``.
    """

    def __init__(self, margin=1.0):
        super().__init__()
        self.margin = float(margin)

    def forward(self, raw, labels):
        d2 = squared_distances(F.normalize(raw, dim=1))
        upper = torch.triu(torch.ones_like(d2, dtype=torch.bool), diagonal=1)
        same = (labels[:, None] == labels[None, :]) & upper
        diff = (labels[:, None] != labels[None, :]) & upper
        if not same.any() or not diff.any():
            raise SpkrecError("the contrastive loss needs same-speaker and different-speaker pairs in each batch")
        d = torch.sqrt(d2[diff] + 1e-12)
        return 0.5 * d2[same].mean() + 0.5 * F.relu(self.margin - d).pow(2).mean()


def ge2e_similarity(e, w, b):
    """GE2E similarity matrix ``S (N, M, N)`` of unit embeddings ``e (N, M, E)``.

    ``S[j, i, k] = w * cos(e_ji, c_k) + b`` with ``c_k`` the centroid of speaker ``k``, except for the
    own speaker (``k == j``) where the centroid excludes ``e_ji`` itself: ``(sum_m e_jm - e_ji) / (M - 1)``.
    """
    N, M, _ = e.shape
    sums = e.sum(dim=1)                                                     # (N, E)
    centroids = F.normalize(sums / M, dim=1)
    excl = F.normalize((sums[:, None, :] - e) / (M - 1), dim=2)           # (N, M, E)
    cos = torch.einsum("jme,ke->jmk", e, centroids)
    own = (e * excl).sum(dim=2)                                             # (N, M)
    idx = torch.arange(N)
    cos = cos.clone()
    cos[idx, :, idx] = own
    return w * cos + b


class GE2ELoss(nn.Module):
    """Generalised end-to-end softmax loss: mean over utterances of ``-S_ji,j + log sum_k exp(S_ji,k)``.

    The batch must be speaker-major: ``N`` speakers with ``M >= 2`` consecutive utterances each.
    ``w`` (kept positive by clamping at ``1e-6``) and ``b`` are learnt, initialised to 10 and -5.
    """

    def __init__(self, init_w=10.0, init_b=-5.0):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(float(init_w)))
        self.b = nn.Parameter(torch.tensor(float(init_b)))

    def forward(self, raw, labels):
        first = labels[0]
        M = int((labels == first).sum())
        B = labels.shape[0]
        grid = labels.view(B // M, M) if M and B % M == 0 else None
        if M < 2 or grid is None or B // M < 2 or not bool((grid == grid[:, :1]).all()):
            raise SpkrecError("the GE2E loss needs batches of N >= 2 speakers x M >= 2 consecutive utterances")
        N = B // M
        e = F.normalize(raw, dim=1).view(N, M, -1)
        S = ge2e_similarity(e, self.w.clamp(min=1e-6), self.b)
        target = torch.arange(N)[:, None].expand(N, M).reshape(-1)
        return F.cross_entropy(S.reshape(N * M, N), target)


class AAMSoftmaxLoss(nn.Module):
    """Additive angular margin softmax over the training speakers.

    ``cos(theta_j) = <raw / |raw|, w_j / |w_j|>`` for the class weights ``w_j``; the logits are
    ``s * cos(theta_j)`` except the true class, ``s * cos(theta_y + m)``. Where ``theta_y + m > pi``
    (``cos(theta_y) < cos(pi - m)``) the target logit is ``s * (cos(theta_y) - m sin(m))`` instead, which
    keeps it monotonic in ``theta_y`` (the usual ArcFace guard). ``logits`` (no margin) scores test data.
    """

    def __init__(self, embed_dim, num_classes, margin=0.2, scale=30.0):
        super().__init__()
        if int(num_classes) < 2:
            raise SpkrecError(f"the AAM-softmax loss needs at least 2 training speakers, got {num_classes}")
        if not 0.0 <= float(margin) < math.pi / 2 or float(scale) <= 0:
            raise SpkrecError(f"AAM-softmax needs 0 <= margin < pi/2 and scale > 0, got {margin} and {scale}")
        self.margin, self.scale = float(margin), float(scale)
        self.weight = nn.Parameter(torch.empty(int(num_classes), int(embed_dim)))
        nn.init.xavier_uniform_(self.weight)

    def cosine(self, raw):
        return F.normalize(raw, dim=1) @ F.normalize(self.weight, dim=1).T

    def logits(self, raw):
        return self.scale * self.cosine(raw)

    def forward(self, raw, labels):
        cos = self.cosine(raw)
        sin = torch.sqrt((1.0 - cos * cos).clamp(min=1e-7))
        m = self.margin
        phi = cos * math.cos(m) - sin * math.sin(m)                         # cos(theta + m)
        phi = torch.where(cos > math.cos(math.pi - m), phi, cos - m * math.sin(m))
        onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)
        return F.cross_entropy(self.scale * (onehot * phi + (1.0 - onehot) * cos), labels)


def make_loss(name, embed_dim, num_classes=None, margin=None):
    """Build a loss module by name (``margin`` defaults: triplet 0.2, contrastive 1.0, aam 0.2)."""
    if name == "softmax":
        return SoftmaxLoss(embed_dim, num_classes)
    if name == "triplet":
        return TripletLoss(0.2 if margin is None else margin)
    if name == "contrastive":
        return ContrastiveLoss(1.0 if margin is None else margin)
    if name == "ge2e":
        return GE2ELoss()
    if name == "aam":
        return AAMSoftmaxLoss(embed_dim, num_classes, 0.2 if margin is None else margin)
    raise SpkrecError(f"unknown loss {name!r}; use one of {', '.join(LOSSES)}")
