"""spkrec: classical statistical speaker recognition with Kaldi-style recipes.

Layers (each imports only the ones below it)::

    spkrec.cli                      thin command-line front end (`spkrec <verb>`)
    spkrec.eval                     metrics and plots on scores
    spkrec.gmm / ivector / backend / embeddings   models (scikit-learn style estimators)
    spkrec.features                 pure signal-processing functions
    spkrec.io                       audio, data dirs, ark/scp, trials, score files
"""
from spkrec.errors import SpkrecError

__version__ = "0.1.0"
__all__ = ["SpkrecError", "__version__"]
