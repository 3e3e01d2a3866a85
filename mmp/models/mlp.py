"""A tabular multi-layer perceptron in torch with the scikit-learn estimator API (`torch-extras`).

    model:
      class_path: mmp.models.mlp.MLPClassifier     # or MLPRegressor
      params: {hidden_layer_sizes: [64, 32], max_epochs: 200}

torch is imported when the model is fitted or used, never when mmp starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin


class _MLP(BaseEstimator):
    def __init__(self, hidden_layer_sizes: tuple[int, ...] | list[int] = (64, 32), activation: str = "relu",
                 dropout: float = 0.0, learning_rate: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 64,
                 max_epochs: int = 200, patience: int = 20, validation_fraction: float = 0.1,
                 random_state: int | None = None):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    _ACTIVATIONS = {"relu": "ReLU", "tanh": "Tanh", "gelu": "GELU", "silu": "SiLU"}

    def _network(self, n_in: int, n_out: int):
        import torch.nn as nn

        if self.activation not in self._ACTIVATIONS:
            raise ValueError(f"activation must be one of {', '.join(self._ACTIVATIONS)}, got {self.activation!r}")
        layers, width = [], n_in
        for size in self.hidden_layer_sizes:
            layers += [nn.Linear(width, int(size)), getattr(nn, self._ACTIVATIONS[self.activation])()]
            if self.dropout:
                layers.append(nn.Dropout(self.dropout))
            width = int(size)
        layers.append(nn.Linear(width, n_out))
        return nn.Sequential(*layers)

    def _train(self, X: np.ndarray, y: np.ndarray, n_out: int, loss_fn: Any) -> None:
        import torch

        # No random_state: draw one from numpy, which mmp seeds from the recipe's split seed.
        seed = self.random_state if self.random_state is not None else int(np.random.randint(0, 2**31 - 1))
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)
        order = torch.randperm(len(X_t), generator=generator)
        n_val = int(len(X_t) * self.validation_fraction) if len(X_t) >= 20 else 0
        val, fit = order[:n_val], order[n_val:]
        self.network_ = self._network(X.shape[1], n_out)
        optimiser = torch.optim.AdamW(self.network_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        best, best_state, waited = float("inf"), None, 0
        for epoch in range(self.max_epochs):
            self.network_.train()
            for batch in fit[torch.randperm(len(fit), generator=generator)].split(self.batch_size):
                optimiser.zero_grad()
                loss_fn(self.network_(X_t[batch]), y_t[batch]).backward()
                optimiser.step()
            if not n_val:
                continue
            self.network_.eval()
            with torch.no_grad():
                score = float(loss_fn(self.network_(X_t[val]), y_t[val]))
            if score < best - 1e-6:
                best, waited = score, 0
                best_state = {k: v.clone() for k, v in self.network_.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        if best_state is not None:
            self.network_.load_state_dict(best_state)
        self.network_.eval()
        self.n_epochs_ = epoch + 1

    def _forward(self, X: Any) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self.network_(torch.as_tensor(np.asarray(X, dtype=np.float32))).numpy()


class MLPClassifier(ClassifierMixin, _MLP):
    """Multi-layer perceptron classifier (cross-entropy, AdamW, early stopping on a held-out share)."""

    def fit(self, X: Any, y: Any) -> "MLPClassifier":
        import torch.nn as nn

        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        self._train(np.asarray(X, dtype=np.float32), codes.astype(np.int64), len(self.classes_), nn.CrossEntropyLoss())
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        logits = self._forward(X).astype(np.float64)  # float32 softmax rows miss 1 by ~1e-7
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class MLPRegressor(RegressorMixin, _MLP):
    """Multi-layer perceptron regressor (mean squared error on a standardised target)."""

    def fit(self, X: Any, y: Any) -> "MLPRegressor":
        import torch.nn as nn

        y = np.asarray(y, dtype=np.float32)
        self.y_mean_, self.y_scale_ = float(y.mean()), float(y.std() or 1.0)
        target = ((y - self.y_mean_) / self.y_scale_).reshape(-1, 1).astype(np.float32)
        self._train(np.asarray(X, dtype=np.float32), target, 1, nn.MSELoss())
        return self

    def predict(self, X: Any) -> np.ndarray:
        return self._forward(X)[:, 0] * self.y_scale_ + self.y_mean_
