"""Bayesian HMM clustering of a sequence of window embeddings (VBx; Landini, Profant, Diez and Burget,
"Bayesian HMM clustering of x-vector sequences (VBx) in speaker diarization", Computer Speech & Language
71, 2022; equation numbers below are theirs).

Model: the windows' vectors ``x_t`` live in a PLDA space where the within-speaker covariance is ``I`` and
the across-speaker covariance ``diag(phi)`` (``spkrec``'s PLDA ``transform``); each of S speakers has a
latent ``y_s ~ N(0, I)`` with mean ``sqrt(phi) * y_s``; a speaker HMM with loop probability ``loop_prob``
and speaker priors ``pi`` emits the windows. Mean-field VB alternates the speakers' posteriors
``q(y_s) = N(alpha_s, diag(inv_l_s))`` and the window-speaker responsibilities ``gamma`` (forward-backward);
``pi`` is re-estimated, so that priors of redundant speakers fall to about 0: the number of speakers left
is the estimate. ``fa`` scales the acoustic statistics (windows overlap and are not independent), ``fb``
the speaker prior (larger: fewer speakers).
"""
import numpy as np
from scipy.special import logsumexp


def forward_backward(loglik, trans, initial):
    """HMM posteriors. loglik (T, S) log emission, trans (S, S) row-stochastic, initial (S,).
    -> ``(gamma (T, S), log p(X), log forward (T, S), log backward (T, S))``."""
    T, S = loglik.shape
    lt = np.log(trans + 1e-12)
    fw = np.empty((T, S))
    bw = np.zeros((T, S))
    fw[0] = loglik[0] + np.log(initial + 1e-12)
    for t in range(1, T):
        fw[t] = loglik[t] + logsumexp(fw[t - 1][:, None] + lt, axis=0)
    for t in range(T - 2, -1, -1):
        bw[t] = logsumexp(lt + (loglik[t + 1] + bw[t + 1])[None, :], axis=1)
    total = float(logsumexp(fw[-1]))
    return np.exp(fw + bw - total), total, fw, bw


def vbx(X, phi, gamma, loop_prob=0.9, fa=1.0, fb=1.0, max_iter=40, tol=1e-4):
    """VB inference of the speaker HMM.

    X : (T, D) window vectors in the PLDA space. phi : (D,) across-speaker variances. gamma : (T, S)
    initial responsibilities (e.g. one-hot AHC labels, S at most a few more than the speakers expected).
    -> ``(gamma (T, S), pi (S,), elbo list)``."""
    X = np.asarray(X, np.float64)
    phi = np.asarray(phi, np.float64)
    gamma = np.asarray(gamma, np.float64)
    T, D = X.shape
    S = gamma.shape[1]
    pi = np.full(S, 1.0 / S)
    const = -0.5 * (np.sum(X ** 2, axis=1, keepdims=True) + D * np.log(2 * np.pi))   # (23), per window
    rho = X * np.sqrt(phi)                                                            # (18)
    elbo = []
    for it in range(int(max_iter)):
        inv_l = 1.0 / (1.0 + (fa / fb) * gamma.sum(axis=0)[:, None] * phi[None, :])   # (17) (S, D)
        alpha = (fa / fb) * inv_l * (gamma.T @ rho)                                   # (16) (S, D)
        loglik = fa * (rho @ alpha.T - 0.5 * (inv_l + alpha ** 2) @ phi + const)      # (23) (T, S)
        trans = loop_prob * np.eye(S) + (1.0 - loop_prob) * pi[None, :]                # (1)
        gamma, log_px, fw, bw = forward_backward(loglik, trans, pi)                   # (19)-(22)
        elbo.append(log_px + 0.5 * fb * np.sum(np.log(inv_l) - inv_l - alpha ** 2 + 1.0))  # (25)
        # (24): expected number of entries into each speaker (first window + switches into it)
        enter = np.exp(logsumexp(fw[:-1], axis=1, keepdims=True) + loglik[1:] + bw[1:] - log_px).sum(axis=0)
        pi = gamma[0] + (1.0 - loop_prob) * pi * enter
        pi = pi / pi.sum()
        if it > 0 and elbo[-1] - elbo[-2] < tol:
            break
    return gamma, pi, elbo


def vbx_labels(X, phi, init_labels, loop_prob=0.9, fa=1.0, fb=1.0, max_iter=40, min_prior=1e-3, smooth=7.0):
    """VBx started from hard labels -> (T,) labels of the speakers whose prior stays above ``min_prior``
    (each window to its most responsible speaker among them). ``smooth``: the initial responsibilities are
    ``softmax(smooth * one_hot)`` as in the VBx recipe."""
    init_labels = np.asarray(init_labels, np.int64)
    S = int(init_labels.max()) + 1
    g = np.exp(smooth * np.eye(S)[init_labels])
    g /= g.sum(axis=1, keepdims=True)
    gamma, pi, _ = vbx(X, phi, g, loop_prob, fa, fb, max_iter)
    keep = np.flatnonzero(pi > min_prior)
    if keep.size == 0:
        keep = np.array([int(np.argmax(pi))])
    return keep[np.argmax(gamma[:, keep], axis=1)]
