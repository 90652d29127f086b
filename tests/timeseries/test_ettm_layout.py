"""ETTm files (15-minute rows) get Informer's ETTm borders (12 / 4 / 4 months of 30 x 24 x 4 rows), by
name under ``data.protocol: auto``; hourly borders on 15-minute rows are refused; dates sort as times."""

import numpy as np
import pandas as pd
import pytest

from multissl.errors import DataError
from multissl.timeseries.data import load_series, make_forecast_data

ETT_COLUMNS = ["HUFL", "HULL", "MUFL", "MULL", "LUFL", "LULL", "OT"]
MONTH_15MIN = 30 * 24 * 4  # 2,880 rows


def _ettm_csv(path, n: int, fmt: str = "%Y-%m-%d %H:%M:%S"):
    dates = pd.date_range("2016-07-01", periods=n, freq="15min")
    vals = np.random.default_rng(0).normal(size=(n, 7)).round(3)
    vals[:, -1] = np.arange(n)  # OT = row number: lets the test see which rows each split holds
    frame = pd.DataFrame(vals, columns=ETT_COLUMNS)
    frame.insert(0, "date", dates.strftime(fmt))
    frame.to_csv(path, index=False)
    return path


def test_ettm_file_gets_the_15_minute_informer_borders(tmp_path):
    n = 20 * MONTH_15MIN + 37  # a few rows past the 20 months, as the real file has
    f = _ettm_csv(tmp_path / "ETTm1.csv", n)
    s = load_series(str(f))
    assert s.step_seconds == 900.0 and s.name == "ETTm1"
    d = make_forecast_data(s, 96, 24, "auto", scale=False)
    train_end, val_end = 12 * MONTH_15MIN, 16 * MONTH_15MIN  # 34,560 and 46,080 (Informer's ETTm borders)
    assert len(d.train) == train_end - 96 - 24 + 1
    assert len(d.val) == len(d.test) == 4 * MONTH_15MIN - 24 + 1
    assert d.val[0][1][0, -1].item() == train_end and d.test[0][1][0, -1].item() == val_end
    assert d.test[len(d.test) - 1][1][-1, -1].item() == 20 * MONTH_15MIN - 1  # rows past 20 months unused
    # the hourly borders would put only 12 x 30 x 24 = 8,640 rows (3 months) in train: refused
    with pytest.raises(DataError, match="15 min"):
        make_forecast_data(s, 96, 24, "informer_hourly")


def test_recipe_default_protocol_reads_an_ettm_file_with_ettm_borders(tmp_path):
    from multissl.recipes import load_recipe
    from multissl.timeseries.tasks import ForecastTask

    f = _ettm_csv(tmp_path / "ETTm2.csv", 20 * MONTH_15MIN)
    recipe = load_recipe("timeseries/dlinear-etth1", [f"data.path={f}"])
    assert recipe.config.data.protocol == "auto"
    parts = ForecastTask().build(recipe)
    assert len(parts.train_data) == 12 * MONTH_15MIN - 96 - 24 + 1
    with pytest.raises(DataError, match="informer_15min"):
        ForecastTask().build(load_recipe("timeseries/dlinear-etth1", [f"data.path={f}",
                                                                        "data.protocol=informer_hourly"]))


def test_dates_sort_as_times_not_as_text(tmp_path):
    # Autoformer-style dates ("7/1/2016 0:15") sort wrongly as strings ("7/1/2016 10:00" < "7/1/2016 2:00")
    f = _ettm_csv(tmp_path / "slice.csv", 200, fmt="%-m/%-d/%Y %-H:%M")
    s = load_series(str(f))
    assert np.array_equal(s.values[:, -1], np.arange(200)) and s.step_seconds == 900.0
