"""spkrec: classical statistical speaker recognition with Kaldi-style recipes.

Layers (each imports only the ones below it)::

    spkrec.cli                      thin command-line front end (`spkrec <verb>`)
    spkrec.system                   bundles of trained models: enrol/verify/identify audio files
    spkrec.eval                     metrics and plots on scores
    spkrec.gmm / ivector / backend / embeddings   models (scikit-learn style estimators)
    spkrec.features                 pure signal-processing functions
    spkrec.io                       audio, data dirs, ark/scp, trials, score files
"""
from spkrec.errors import SpkrecError

__version__ = "0.1.0"
__all__ = ["SpkrecError", "__version__", "load_system"]


def load_system(path):
    """Load a system bundle written by ``spkrec export-system`` (see :mod:`spkrec.system`)."""
    from spkrec.system import load_system as _load
    return _load(path)
