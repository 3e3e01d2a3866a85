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
    import pandas as pd
    from econml.data.dgps import _ihdp_sim_data, ihdp_surface_B

    outcome, treatment, X, _ = ihdp_surface_B(random_state=IHDP_SEED)
    names = ["bw", "b.head", "preterm", "birth.o", "nnhealth", "momage", "sex", "twin", "b.marr", "mom.lths",
             "mom.hs", "mom.scoll", "cig", "first", "booze", "drugs", "work.dur", "prenatal",
             *(f"site{i}" for i in range(1, 8))]  # the columns econml selects, in its order
    assert all(n in _ihdp_sim_data.columns for n in names)
    frame = pd.DataFrame(X[:, 1:], columns=[n.replace(".", "_") for n in names])  # X[:, 0] is an intercept
    for column in frame.columns[6:]:  # indicators (and `first`, 1 or 2) stay integers; the first six are scaled
        frame[column] = frame[column].round().astype("int64")
    frame.insert(0, "outcome", outcome)
    frame.insert(0, "treatment", treatment.astype("int64"))
    frame.insert(0, "id", range(1, len(frame) + 1))
    path = dest / "ihdp.csv"
    frame.to_csv(path, index=False)
    return path


if __name__ == "__main__":
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else "data")
    for path in [*write_sample_data(dest), air_passengers(dest), us_macro(dest), ihdp(dest)]:
        print(path)
