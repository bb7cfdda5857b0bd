"""Forward, backward, Viterbi and posteriors of one HMM on given frame log-likelihoods.

The recursions are hmmlearn's compiled ones (``hmmlearn._hmmc``, log domain); this module only adds
the end-state constraint and the posteriors. A left-to-right phrase model must end in its last state:
adding ``log end_prob`` to the last frame's log-likelihoods makes hmmlearn's "any final state" sums
exactly the sums over paths that end where ``end_prob`` allows (``-inf`` elsewhere).
"""
import numpy as np
from hmmlearn import _hmmc  # compiled forward/backward/Viterbi/xi (private module of hmmlearn >= 0.3)


def _frames(log_frame, log_end):
    lf = np.array(log_frame, dtype=np.float64, order="C")
    if log_end is not None and len(lf):
        lf[-1] += log_end
    return lf


def forward(startprob, transmat, log_frame, log_end=None):
    """Log-likelihood ``log p(X)`` summed over state paths; ``log_frame`` (T, S) ``log p(x_t | s)``."""
    return _hmmc.forward_log(startprob, transmat, _frames(log_frame, log_end))[0]


def viterbi(startprob, transmat, log_frame, log_end=None):
    """``(log p(X, best path), best path (T,) int)``."""
    return _hmmc.viterbi(startprob, transmat, _frames(log_frame, log_end))


def posteriors(startprob, transmat, log_frame, log_end=None):
    """``(loglik, gamma (T, S) state posteriors, xi (S, S) expected transition counts)``."""
    lf = _frames(log_frame, log_end)
    loglik, fwd = _hmmc.forward_log(startprob, transmat, lf)
    bwd = _hmmc.backward_log(startprob, transmat, lf)
    log_gamma = fwd + bwd - loglik
    gamma = np.exp(log_gamma)
    if len(lf) > 1:
        xi = np.exp(_hmmc.compute_log_xi_sum(fwd, transmat, bwd, lf))
    else:
        xi = np.zeros_like(transmat)
    return loglik, gamma, xi
