"""The plots of a causal model on one split: uplift and Qini curves against random targeting, and the
predicted against the observed effect by decile. Several arms: one line (one panel) per arm, each on
the rows of that arm or the control, ranked by that arm's predicted effect."""

from __future__ import annotations

from typing import Any

import numpy as np

from mmp.training.uplift import effect_by_decile, qini_curve, uplift_curve, uplift_metrics


def figures(split: str, y: np.ndarray, t: np.ndarray, predicted: Any, arms: list) -> list[tuple[str, Any]]:
    """(name, matplotlib figure): uplift_curve, qini_curve, effect_by_decile for one split (`t`: arm codes)."""
    import matplotlib

    matplotlib.use("Agg")
    pairs = arm_rows(y, t, predicted, arms)
    scores = [uplift_metrics(*rows) for _, *rows in pairs]
    if len(pairs) == 1:
        uplift_title = f"Uplift curve ({split}): AUUC {scores[0]['auuc']:.3f}"
        qini_title = f"Qini curve ({split}): Qini {scores[0]['qini']:.3f}"
        uplift_labels = qini_labels = ["model"]
    else:
        uplift_title = f"Uplift curves ({split}), each arm vs control"
        qini_title = f"Qini curves ({split}), each arm vs control"
        uplift_labels = [f"{arm}: AUUC {s['auuc']:.3f}" for (arm, *_), s in zip(pairs, scores)]
        qini_labels = [f"{arm}: Qini {s['qini']:.3f}" for (arm, *_), s in zip(pairs, scores)]
    return [
        ("uplift_curve", _curves([uplift_curve(*rows) for _, *rows in pairs], uplift_labels, uplift_title,
                                 "cumulative gain (treated - control mean) x rows")),
        ("qini_curve", _curves([qini_curve(*rows) for _, *rows in pairs], qini_labels, qini_title,
                               "incremental outcome (Qini)")),
        ("effect_by_decile", _deciles([(arm, effect_by_decile(*rows)) for arm, *rows in pairs], split)),
    ]


def arm_rows(y: np.ndarray, t: np.ndarray, predicted: Any, arms: list) -> list[tuple]:
    """(arm, outcomes, 0/1 treated, predicted effect) per treated arm, on the rows of that arm or the control."""
    if len(arms) == 2:
        return [(str(arms[1]), y, t.astype(float), predicted["prediction"].to_numpy())]
    out = []
    for j, arm in enumerate(arms[1:], start=1):
        rows = (t == 0) | (t == j)
        out.append((str(arm), y[rows], (t[rows] == j).astype(float), predicted[f"prediction_{arm}"].to_numpy()[rows]))
    return out


def _curves(curves: list[np.ndarray], labels: list[str], title: str, ylabel: str):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    for i, (curve, label) in enumerate(zip(curves, labels)):
        x = np.linspace(0.0, 1.0, len(curve))
        ax.plot(x, curve, color=f"C{i}", label=label)
        # Random targeting: the straight line to the same overall gain (per arm: its own rows).
        ax.plot([0, 1], [0, curve[-1]], linestyle="--", color="grey" if len(curves) == 1 else f"C{i}", alpha=0.7,
                label="random targeting" + (" (dashed)" if len(curves) > 1 else "") if i == 0 else None)
    ax.set_xlabel("share of rows targeted (highest predicted effect first)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def _deciles(panels: list[tuple[str, list[dict[str, float]]]], split: str):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), sharey=True, squeeze=False)
    for ax, (arm, rows) in zip(axes[0], panels):
        x = np.array([r["decile"] for r in rows])
        ax.bar(x - 0.2, [r["predicted"] for r in rows], width=0.4, label="mean predicted effect (CATE)")
        ax.bar(x + 0.2, [r["observed"] for r in rows], width=0.4, label="observed treated - control")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xticks(x)
        ax.set_xlabel("decile of predicted effect (1 = highest)")
        single = f"Predicted vs observed effect by decile ({split})"
        ax.set_title(single if len(panels) == 1 else f"{arm} vs control ({split})")
    axes[0][0].set_ylabel("effect on the outcome")
    axes[0][0].legend()
    fig.tight_layout()
    return fig
