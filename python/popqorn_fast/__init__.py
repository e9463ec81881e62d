"""popqorn_fast: certified robustness radii (POPQORN) for RNN, LSTM and GRU classifiers.

>>> import popqorn_fast as pf
>>> w = pf.load_model(pf.default_model_path())
>>> cert = pf.certify(w, x, eps_max=1.0, p=2)          # x: (T, n) NumPy array
"""
from __future__ import annotations

from . import _blas  # noqa: F401  (first: loads the core's BLAS with its threads off)
from . import attack, lines, planes  # researchers' modules (API.md): pf.lines.bound_activation, ...
from .certificate import Certificate
from .certify import (bound_margins, bound_states, certify, certify_gru, certify_lstm, certify_many,
                      certify_rnn, sensitivity)
from .substitutions import SubstitutionCertificate, certify_substitutions
from .model_io import default_model_path, load_inputs, load_model
from .general import Dense, RecurrentClassifier, RecurrentLayer
from .weights import GRUWeights, LSTMWeights, RNNWeights

__version__ = "0.2.7"

__all__ = [
    "RNNWeights", "LSTMWeights", "GRUWeights", "RecurrentLayer", "Dense", "RecurrentClassifier", "load_model", "load_inputs", "default_model_path",
    "certify", "certify_rnn", "certify_lstm", "certify_gru", "certify_many", "bound_margins",
    "bound_states", "sensitivity", "Certificate", "certify_substitutions", "SubstitutionCertificate", "attack", "lines", "planes", "__version__",
]
