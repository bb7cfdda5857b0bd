"""spkrec: classical statistical speaker recognition with Kaldi-style recipes.

Layers (each imports only layers below it, never the CLI; see docs/architecture.md)::

    spkrec.cli                      thin command-line front end (`spkrec <verb>`)
    spkrec.system                   bundles of trained models: enrol/verify/identify audio files
    spkrec.gmm / ivector / backend / embeddings   models (scikit-learn estimators); within this layer
                                    ivector and backend use the mixture core spkrec.gmm.core, and
                                    embeddings uses spkrec.eval.metrics (EER for model selection)
    spkrec.eval                     metrics and plots on scores
    spkrec.features                 pure signal-processing functions
    spkrec.io                       audio, data dirs, ark/scp, trials, score files, frame sources
"""
from spkrec.errors import SpkrecError

__version__ = "0.1.0"
__all__ = ["SpkrecError", "__version__", "load_system"]


def load_system(path):
    """Load a system bundle written by ``spkrec export-system`` (see :mod:`spkrec.system`)."""
    from spkrec.system import load_system as _load
    return _load(path)
