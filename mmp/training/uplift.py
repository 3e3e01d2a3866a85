"""How good is a causal model on a held-out split: the ATE with a confidence interval, uplift and Qini
curves (AUUC, Qini coefficient) and the predicted effect by decile (plotted by `uplift_plots`).

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

Several arms: each arm is measured against the control. Its ATE is the multi-arm AIPW estimate over
all the split's rows (propensities from one multinomial classifier), so it is the effect of giving that
arm to everyone, as the mean of `prediction_<arm>` is; its AUUC and Qini rank the rows of that arm or
the control by `prediction_<arm>`. The split's `auuc` and `qini` are the means over arms.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Z95 = 1.959963984540054
PROPENSITY_CLIP = 0.01  # propensities kept in [0.01, 0.99]: one extreme weight would swamp the mean


def aipw_ate(y: np.ndarray, t: np.ndarray, mu0: np.ndarray, mu1: np.ndarray, e: np.ndarray) -> dict[str, float]:
    """The AIPW estimate of the average treatment effect, its standard error and 95% interval."""
    return aipw_arm(y, t, 1 - t, mu0, mu1, e, 1 - e)


def aipw_arm(y: np.ndarray, treated: np.ndarray, control: np.ndarray, mu0: np.ndarray, mu1: np.ndarray,
             e1: np.ndarray, e0: np.ndarray) -> dict[str, float]:
    """`aipw_ate` of one arm against the control: 0/1 indicators of each, their outcome models and
    propensities (rows of other arms add their outcome models' difference only)."""
    e1, e0 = np.clip(e1, PROPENSITY_CLIP, 1 - PROPENSITY_CLIP), np.clip(e0, PROPENSITY_CLIP, 1 - PROPENSITY_CLIP)
    scores = mu1 - mu0 + treated * (y - mu1) / e1 - control * (y - mu0) / e0
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


def evaluation(y: np.ndarray, t: np.ndarray, predicted: Any, arms: list, mu: list[np.ndarray], e: np.ndarray,
               metrics: list[str]) -> dict[str, float]:
    """One split's ATE with its interval, mean predicted effect and `metrics` (auuc, qini): `t` holds arm
    codes (0 = control), `mu` each arm's outcome model's predictions, `e` the propensity of each arm.
    One treated arm: `ate`, `ate_lower`, ..., `auuc`; several: `ate_<arm>`, `ate_<arm>_lower`, ...,
    `auuc_<arm>`, and `auuc`, `qini` as the mean over arms."""
    if len(arms) == 2:
        effect = predicted["prediction"].to_numpy()
        values = aipw_ate(y, t, mu[0], mu[1], e[:, 1])
        values["ate_predicted"] = float(effect.mean())
        return {**values, **{k: v for k, v in uplift_metrics(y, t, effect).items() if k in metrics}}
    values = {}
    for j, arm in enumerate(arms[1:], start=1):
        effect = predicted[f"prediction_{arm}"].to_numpy()
        ate = aipw_arm(y, (t == j).astype(float), (t == 0).astype(float), mu[0], mu[j], e[:, j], e[:, 0])
        values.update({f"ate_{arm}{key[3:]}": value for key, value in ate.items()})  # ate_se -> ate_<arm>_se
        values[f"ate_{arm}_predicted"] = float(effect.mean())
        rows = (t == 0) | (t == j)
        scores = uplift_metrics(y[rows], (t[rows] == j).astype(float), effect[rows])
        values.update({f"{k}_{arm}": v for k, v in scores.items() if k in metrics})
    for metric in metrics:
        per_arm = [values[f"{metric}_{arm}"] for arm in arms[1:]]
        values[metric] = float(np.nanmean(per_arm)) if not np.isnan(per_arm).all() else float("nan")
    return values
