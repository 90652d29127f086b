"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "timeseries.forecast": ("multissl.timeseries.tasks:ForecastTask",
                            ("multivariate forecasting: MSE only, two-phase or end-to-end MSE + MoCo contrastive "
                            "(Zhang et al. 2023), DLinear / last-value baselines")),
}
EVALS = {
    "forecast-table": ("multissl.timeseries.evaluate:main",
                       "per-horizon MSE/MAE table: last value, DLinear, MSE-only, two-phase, end-to-end"),
}
