"""popqorn_fast: certified robustness radii (POPQORN) for RNN, LSTM and GRU classifiers."""
from __future__ import annotations

from .weights import GRUWeights, LSTMWeights, RNNWeights

__version__ = "0.1.0"

__all__ = ["RNNWeights", "LSTMWeights", "GRUWeights", "__version__"]
