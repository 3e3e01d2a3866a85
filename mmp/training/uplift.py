"""How good is a causal model on a held-out split: the ATE with a confidence interval, uplift and Qini
curves (AUUC, Qini coefficient) and the predicted effect by decile, with their plots.

ATE: the augmented inverse-propensity-weighted (AIPW, doubly robust) estimate over the split's rows,
with nuisance models (an outcome regressor per arm, a propensity classifier) fitted on the train split
only. Each row's AIPW score is then an independent draw given the train split, so the mean's standard
error is their standard deviation over sqrt(n) and the 95% interval is mean +- 1.96 SE. It is consistent
when either nuisance is right, needs no inference support from the learner (S-, T-, X-learners have
none short of a slow bootstrap), and is the same yardstick for every learner.

Uplift and Qini curves follow the usual definitions (Radcliffe 2007; causalml's get_cumgain/get_qini):
rows sorted by predicted effect, best first; at each cut k the uplift curve is (mean treated outcome -
mean control outcome among the top k) * k, the Qini curve is treated outcome sum - control outcome sum
* (treated count / control count) among the top k. Both are normalised by their value over all rows,
so random targeting is the diagonal: AUUC (area under the normalised uplift curve) is 0.5 for random
targeting, and the Qini coefficient (area between the normalised Qini curve and the diagonal) is 0.
They compare observed outcomes of treated and control rows, so they assume the split's treatment was
assigned as if at random given the ranking (true of experiments; approximately of observational data).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Z95 = 1.959963984540054
PROPENSITY_CLIP = 0.01  # propensities kept in [0.01, 0.99]: one extreme weight would swamp the mean


def aipw_ate(y: np.ndarray, t: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, e: np.ndarray) -> dict[str, float]:
    """The AIPW estimate of the average treatment effect, its standard error and 95% interval."""
    e = np.clip(e, PROPENSITY_CLIP, 1 - PROPENSITY_CLIP)
    scores = mu1 - mu0 + t * (y - mu1) / e - (1 - t) * (y - mu0) / (1 - e)
    ate = float(scores.mean())
    se = float(scores.std(ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else float("nan")
    return {"ate": ate, "ate_se": se, "ate_lower": ate - Z95 * se, "ate_upper": ate + Z95 * se}


def _cumulative(y: np.ndarray, t: np.ndarray, effect: np.ndarray) -> tuple[np.ndarray, ...]:
    """Cumulative treated/control counts and outcome sums, rows sorted by predicted effect (best first)."""
    order = np.argsort(-effect, kind="stable")
    y, t = y[order], t[order]
    n_t, n_c = np.cumsum(t), np.cumsum(1 - t)
    return n_t, n_c, np.cumsum(y * t), np.cumsum(y * (1 - t))


def uplift_curve(y: np.ndarray, t: np.ndarray, effect: np.ndarray) -> np.ndarray:
    """Cumulative gain at cuts 0..n: (treated mean - control mean among the top k) * k."""
    n_t, n_c, y_t, y_c = _cumulative(y, t, effect)
    # Until the top rows hold both arms there is no difference to measure: count it as no gain yet.
    lift = np.where((n_t > 0) & (n_c > 0), y_t / np.maximum(n_t, 1) - y_c / np.maximum(n_c, 1), 0.0)
    return np.concatenate([[0.0], lift * np.arange(1, len(y) + 1)])


def qini_curve(y: np.ndarray, t: np.ndarray, effect: np.ndarray) -> np.ndarray:
    """Qini curve at cuts 0..n: treated outcome sum - control outcome sum scaled to the treated count."""
    n_t, n_c, y_t, y_c = _cumulative(y, t, effect)
    qini = np.where((n_t > 0) & (n_c > 0), y_t - y_c * n_t / np.maximum(n_c, 1), 0.0)
    return np.concatenate([[0.0], qini])


def _normalised_area(curve: np.ndarray) -> float:
    """Area under `curve / curve[-1]` over the population share [0, 1]; NaN when the overall gain is 0."""
    if not np.isfinite(curve[-1]) or abs(curve[-1]) < 1e-12:
        return float("nan")
    x = np.linspace(0.0, 1.0, len(curve))
    return float(np.trapezoid(curve / curve[-1], x))


def uplift_metrics(y: np.ndarray, t: np.ndarray, effect: np.ndarray) -> dict[str, float]:
    """AUUC (normalised, random = 0.5) and the Qini coefficient (random = 0)."""
    return {"auuc": _normalised_area(uplift_curve(y, t, effect)),
            "qini": _normalised_area(qini_curve(y, t, effect)) - 0.5}


def effect_by_decile(y: np.ndarray, t: np.ndarray, effect: np.ndarray, bins: int = 10) -> list[dict[str, float]]:
    """Per decile of predicted effect (highest first): mean predicted effect and the observed treated
    minus control outcome (NaN where a decile lacks one arm)."""
    order = np.argsort(-effect, kind="stable")
    rows = []
    for i, part in enumerate(np.array_split(order, bins)):
        if not len(part):
            continue
        treated, control = part[t[part] == 1], part[t[part] == 0]
        observed = y[treated].mean() - y[control].mean() if len(treated) and len(control) else float("nan")
        rows.append({"decile": i + 1, "predicted": float(effect[part].mean()), "observed": float(observed),
                     "rows": len(part)})
    return rows


def figures(split: str, y: np.ndarray, t: np.ndarray, effect: np.ndarray) -> list[tuple[str, Any]]:
    """(name, matplotlib figure): uplift_curve, qini_curve, effect_by_decile for one split."""
    import matplotlib

    matplotlib.use("Agg")
    metrics = uplift_metrics(y, t, effect)
    return [
        ("uplift_curve", _curve(uplift_curve(y, t, effect), f"Uplift curve ({split}): AUUC {metrics['auuc']:.3f}",
                                "cumulative gain (treated - control mean) x rows")),
        ("qini_curve", _curve(qini_curve(y, t, effect), f"Qini curve ({split}): Qini {metrics['qini']:.3f}",
                              "incremental outcome (Qini)")),
        ("effect_by_decile", _deciles(effect_by_decile(y, t, effect), split)),
    ]


def _curve(curve: np.ndarray, title: str, ylabel: str):
    import matplotlib.pyplot as plt

    x = np.linspace(0.0, 1.0, len(curve))
    fig, ax = plt.subplots(figsize=(5.5, 4.5))
    ax.plot(x, curve, label="model")
    ax.plot([0, 1], [0, curve[-1]], linestyle="--", color="grey", label="random targeting")
    ax.set_xlabel("share of rows targeted (highest predicted effect first)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


def _deciles(rows: list[dict[str, float]], split: str):
    import matplotlib.pyplot as plt

    x = np.array([r["decile"] for r in rows])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.bar(x - 0.2, [r["predicted"] for r in rows], width=0.4, label="mean predicted effect (CATE)")
    ax.bar(x + 0.2, [r["observed"] for r in rows], width=0.4, label="observed treated - control")
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xlabel("decile of predicted effect (1 = highest)")
    ax.set_ylabel("effect on the outcome")
    ax.set_title(f"Predicted vs observed effect by decile ({split})")
    ax.legend()
    fig.tight_layout()
    return fig
