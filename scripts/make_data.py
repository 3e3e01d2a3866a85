"""Write the example datasets into data/ (or the folder given): python scripts/make_data.py [DEST].

Besides the tabular sets (mmp.project.sample_data), the forecasting examples come from the real
series the libraries ship: the airline passengers (statsforecast) and US quarterly macro series
(statsmodels' macrodata), in long form: one row per series and time step.
"""

import sys
from pathlib import Path

from mmp.project.sample_data import write_sample_data

# The macrodata columns written as series: real GDP and its parts, disposable income, and prices.
MACRO_SERIES = ("realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi")


def air_passengers(dest: Path) -> Path:
    """Monthly international airline passengers (thousands), 1949-1960: series, month, passengers."""
    import pandas as pd
    from statsforecast.utils import AirPassengersDF

    frame = pd.DataFrame({"series": "airline",
                          "month": pd.date_range("1949-01-01", periods=len(AirPassengersDF), freq="MS").strftime("%Y-%m-%d"),
                          "passengers": AirPassengersDF["y"].astype(int).to_numpy()})
    path = dest / "air_passengers.csv"
    frame.to_csv(path, index=False)
    return path


def us_macro(dest: Path) -> Path:
    """US quarterly macro series, 1959Q1-2009Q3 (statsmodels macrodata): series, quarter, value."""
    import pandas as pd
    import statsmodels.api as sm

    data = sm.datasets.macrodata.load_pandas().data
    quarter = pd.PeriodIndex.from_fields(year=data["year"].astype(int), quarter=data["quarter"].astype(int), freq="Q")
    data["quarter"] = quarter.to_timestamp(how="start").strftime("%Y-%m-%d")
    frame = data.melt(id_vars=["quarter"], value_vars=list(MACRO_SERIES), var_name="series", value_name="value")
    path = dest / "us_macro.csv"
    frame[["series", "quarter", "value"]].to_csv(path, index=False)
    return path


IHDP_SEED = 42  # tests/training/test_causal.py recomputes the true effects with it


def ihdp(dest: Path) -> Path:
    """IHDP (Hill 2011) from EconML's bundled copy, with its semi-synthetic response surface B: real
    covariates of 747 children, treatment, outcome. The true effect per row is known but not written
    (it would leak); ihdp_surface_B(random_state=IHDP_SEED) recomputes it, row i = id i."""
    from econml.data.dgps import ihdp_surface_B

    outcome, treatment, X, _ = ihdp_surface_B(random_state=IHDP_SEED)
    path = dest / "ihdp.csv"
    _ihdp_frame(X, treatment.astype("int64"), outcome).to_csv(path, index=False)
    return path


def _ihdp_frame(X, treatment, outcome):
    """id, treatment, outcome and the 25 IHDP covariates as econml's X holds them (intercept dropped)."""
    import pandas as pd
    from econml.data.dgps import _ihdp_sim_data

    names = ["bw", "b.head", "preterm", "birth.o", "nnhealth", "momage", "sex", "twin", "b.marr", "mom.lths",
             "mom.hs", "mom.scoll", "cig", "first", "booze", "drugs", "work.dur", "prenatal",
             *(f"site{i}" for i in range(1, 8))]  # the columns econml selects, in its order
    assert all(n in _ihdp_sim_data.columns for n in names)
    frame = pd.DataFrame(X[:, 1:], columns=[n.replace(".", "_") for n in names])  # X[:, 0] is an intercept
    for column in frame.columns[6:]:  # indicators (and `first`, 1 or 2) stay integers; the first six are scaled
        frame[column] = frame[column].round().astype("int64")
    frame.insert(0, "outcome", outcome)
    frame.insert(0, "treatment", treatment)
    frame.insert(0, "id", range(1, len(frame) + 1))
    return frame


IHDP_ARMS_ATE = {"visits": 4.0, "phone": 1.5}  # each arm's true average effect over the 747 children


def ihdp_arms_surface(random_state: int = IHDP_SEED):
    """A three-arm semi-synthetic design on the IHDP covariates, after Hill's (2011) surface B: (outcome,
    arm of each row: control / visits / phone, X as econml's, {arm: true effect of each row})."""
    import numpy as np
    from econml.data.dgps import _process_ihdp_sim_data

    _, X = _process_ihdp_sim_data()
    rng = np.random.RandomState(random_state)
    n, d = X.shape

    def draw():  # Hill's sparse coefficients: most covariates do not matter, the rest 0.1 to 0.4
        return rng.choice([0, 0.1, 0.2, 0.3, 0.4], size=d, replace=True, p=[0.6, 0.1, 0.1, 0.1, 0.1])

    control = np.exp((X + np.r_[0.0, np.full(d - 1, 0.5)]) @ draw())  # surface B's control response
    visits = X @ draw() - control  # surface B's effect: smallest (even harmful) where the control outcome is high
    phone = 5 * X @ draw()  # smaller on average, whatever the control outcome: the better arm for some children
    effects = {"visits": visits - visits.mean() + IHDP_ARMS_ATE["visits"],
               "phone": phone - phone.mean() + IHDP_ARMS_ATE["phone"]}
    # Assignment depends on the six continuous covariates (multinomial logit), as observational data would.
    scores = np.column_stack([np.zeros(n), *(X[:, 1:7] @ rng.normal(0, 0.15, 6) for _ in effects)])
    propensity = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    codes = (rng.uniform(size=(n, 1)) > propensity.cumsum(axis=1)).sum(axis=1)
    means = np.column_stack([control, control + effects["visits"], control + effects["phone"]])
    outcome = means[np.arange(n), codes] + rng.normal(0, 1, size=n)
    return outcome, np.array(["control", "visits", "phone"])[codes], X, effects


def ihdp_arms(dest: Path) -> Path:
    """The IHDP children under `ihdp_arms_surface`: id, treatment (control, visits or phone), outcome,
    covariates. The true effects are not written; ihdp_arms_surface(IHDP_SEED) recomputes them, row i = id i."""
    outcome, arms, X, _ = ihdp_arms_surface(IHDP_SEED)
    path = dest / "ihdp_arms.csv"
    _ihdp_frame(X, arms, outcome).to_csv(path, index=False)
    return path


if __name__ == "__main__":
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "data")
    for path in [*write_sample_data(dest), air_passengers(dest), us_macro(dest), ihdp(dest), ihdp_arms(dest)]:
        print(path)
