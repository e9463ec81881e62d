"""Readers of the files frameworks write (docs/API.md ``load_model``).

- :mod:`.onnx_graph`: ``.onnx`` (any graph computing a general model, both PyTorch exporters);
- :mod:`.keras_file`: Keras 3 ``.keras`` (and ``.weights.h5`` + config);
- :mod:`.state_dicts`: PyTorch state_dicts as ``.npz`` / ``.safetensors``.

Each reader returns a one-layer class (RNNWeights / LSTMWeights / GRUWeights) when the
file is exactly one unidirectional layer with a Linear head on the last hidden state, else
a :class:`popqorn_fast.general.RecurrentClassifier` (:func:`.common.simplest`).
"""
