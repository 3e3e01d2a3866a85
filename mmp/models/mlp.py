"""A tabular multi-layer perceptron in torch with the scikit-learn estimator API (`torch-extras`).

    model:
      class_path: mmp.models.mlp.MLPClassifier     # or MLPRegressor
      params: {hidden_layer_sizes: [64, 32], max_epochs: 200}

With `warm_start: true` a fit goes on from the last one up to `max_epochs` epochs in all (optimiser,
random streams and early-stopping record carry over), which is how mmp fits it in stages for tuning.
torch is imported when the model is fitted or used, never when mmp starts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin


class _Run:
    """Where one training run stands: its split, optimiser, random streams and early-stopping record.
    A warm-started fit picks it up, so that fitting in parts trains exactly as one long fit."""

    def __init__(self, estimator: "_MLP", n_rows: int, n_in: int, n_out: int):
        import torch

        # No random_state: draw one from numpy, which mmp seeds from the recipe's split seed.
        seed = estimator.random_state if estimator.random_state is not None else int(np.random.randint(0, 2**31 - 1))
        self.generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        order = torch.randperm(n_rows, generator=self.generator)
        n_val = int(n_rows * estimator.validation_fraction) if n_rows >= 20 else 0
        self.val, self.fit = order[:n_val], order[n_val:]
        estimator.network_ = estimator._network(n_in, n_out)
        self.optimiser = torch.optim.AdamW(estimator.network_.parameters(), lr=estimator.learning_rate,
                                           weight_decay=estimator.weight_decay)
        self.epoch, self.best, self.best_state, self.waited, self.stopped = 0, float("inf"), None, 0, False
        self.current, self.torch_rng = None, None

    def record(self, score: float, network: Any, patience: int) -> None:
        """Note one epoch's validation loss: keep the best weights, stop after `patience` epochs without gain."""
        if score < self.best - 1e-6:
            self.best, self.waited = score, 0
            self.best_state = {k: v.clone() for k, v in network.state_dict().items()}
        else:
            self.waited += 1
            self.stopped = self.waited >= patience

    def pause(self, network: Any) -> None:
        """Give the network its best weights, keeping the ones training goes on from."""
        import torch

        if self.best_state is not None:
            self.current = {k: v.clone() for k, v in network.state_dict().items()}
            network.load_state_dict(self.best_state)
        self.torch_rng = torch.get_rng_state()  # dropout draws from torch's global stream

    def resume(self, network: Any) -> None:
        import torch

        if self.current is not None:
            network.load_state_dict(self.current)
        torch.set_rng_state(self.torch_rng)


class _MLP(BaseEstimator):
    def __init__(self, hidden_layer_sizes: tuple[int, ...] | list[int] = (64, 32), activation: str = "relu",
                 dropout: float = 0.0, learning_rate: float = 1e-3, weight_decay: float = 0.0, batch_size: int = 64,
                 max_epochs: int = 200, patience: int = 20, validation_fraction: float = 0.1,
                 random_state: int | None = None, warm_start: bool = False):
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
        self.warm_start = warm_start

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
        """Train up to `max_epochs` epochs in all; with warm_start, go on from where the last fit stopped
        (a run that early stopping ended stays ended)."""
        import torch

        run = self.__dict__.get("_run") if self.warm_start else None
        if run is None:
            run = _Run(self, len(X), X.shape[1], n_out)
        else:
            run.resume(self.network_)
        X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)
        while run.epoch < self.max_epochs and not run.stopped:
            self.network_.train()
            for batch in run.fit[torch.randperm(len(run.fit), generator=run.generator)].split(self.batch_size):
                run.optimiser.zero_grad()
                loss_fn(self.network_(X_t[batch]), y_t[batch]).backward()
                run.optimiser.step()
            run.epoch += 1
            if len(run.val):
                self.network_.eval()
                with torch.no_grad():
                    run.record(float(loss_fn(self.network_(X_t[run.val]), y_t[run.val])), self.network_, self.patience)
        run.pause(self.network_)
        self.network_.eval()
        self.n_epochs_ = run.epoch
        if self.warm_start:
            self._run = run
        else:
            self.__dict__.pop("_run", None)

    def __getstate__(self) -> dict:
        # A warm start's training state (optimiser, random streams) is not part of the fitted model.
        state = super().__getstate__()
        state.pop("_run", None)
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("warm_start", False)  # pickled before warm_start existed
        super().__setstate__(state)

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
