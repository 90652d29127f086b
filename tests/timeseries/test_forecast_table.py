"""``multissl eval forecast-table`` scores every row on the ONE file given by ``--data``: a test per
promise of issue 20 (same file in every row's recipe, same split and scaler, run folders named after
the data set, every horizon printed, published figures only beside the data set they belong to)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from multissl.data import project_root
from multissl.timeseries.evaluate import PUBLISHED, file_sha256, main


def _other_series(tmp_path: Path) -> Path:
    """A real but different series: 1,200 hourly rows of ETTh1 from row 5,000, channels reversed and shifted."""
    frame = pd.read_csv(project_root() / "data" / "ett" / "ETTh1.csv").iloc[5000:6200]
    cols = [c for c in frame.columns if c != "date"]
    frame[cols] = frame[cols[::-1]].to_numpy() + np.arange(len(cols))
    out = tmp_path / "OtherSeries.csv"
    frame.to_csv(out, index=False)
    return out


def test_every_row_uses_the_given_file(tmp_path, capsys):
    data = _other_series(tmp_path)
    report = tmp_path / "table.json"
    rc = main(["--data", str(data), "--horizons", "8", "13", "--regimes", "e2e", "--seeds", "0",
               "--revin", "--output-dir", str(tmp_path / "runs"), "--json", str(report),
               "data.seq_len=24", "train.max_steps=3", "train.eval_every=3", "model.d_model=8", "model.d_ff=16",
               "model.layers=1", "model.heads=2", "method.queue_size=32"])
    assert rc == 0
    out = capsys.readouterr().out
    rec = json.loads(report.read_text())
    assert rec["protocol"] == "ratio" and rec["revin"]
    runs = rec["runs"]
    assert {(r["row"], r["horizon"]) for r in runs} == {(r, h) for r in ("dlinear", "e2e") for h in (8, 13)}
    for r in runs:  # every row's resolved recipe names the given file, split and RevIN
        recipe = yaml.safe_load((Path(r["run_dir"]) / "recipe.yaml").read_text())
        assert Path(recipe["data"]["path"]) == data, r["row"]
        assert recipe["data"]["protocol"] == "ratio" and recipe["data"]["seq_len"] == 24
        assert recipe["model"]["revin"] is True
        assert "forecast-table-OtherSeries" in r["run_dir"]
    for h in (8, 13):  # the same test windows and scaler in every row: identical last-value figures
        lv = {round(r["metrics"]["test/last_value_mse"], 9) for r in runs if r["horizon"] == h}
        assert len(lv) == 1
    assert "| 8 |" in out and "| 13 |" in out  # every horizon asked for is printed
    assert "Informer" not in out.split("test MSE / MAE")[1]  # no ETTh1 paper figures beside another file


def test_published_figures_are_keyed_by_content():
    """Informer's figures belong to the unchanged ETTh1 file, recognised by its content, not its name."""
    assert PUBLISHED[file_sha256(project_root() / "data" / "ett" / "ETTh1.csv")][0] == "ETTh1"


def test_paired_differences_interval():
    from multissl.timeseries.evaluate import paired_differences

    base = [(0.30, 0.0), (0.32, 0.0), (0.31, 0.0)]
    other = [(0.31, 0.0), (0.34, 0.0), (0.31, 0.0)]  # differences +0.01, +0.02, 0.00
    r = paired_differences(base, other)
    assert abs(r["mean"] - 0.01) < 1e-12 and abs(r["sd"] - 0.01) < 1e-12 and r["worse"] == 2 and r["n"] == 3
    half = 4.302652729911275 * 0.01 / np.sqrt(3)  # t(0.975, 2 df)
    assert abs(r["lo"] - (0.01 - half)) < 1e-9 and abs(r["hi"] - (0.01 + half)) < 1e-9
