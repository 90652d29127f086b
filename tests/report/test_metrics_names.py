"""How the report reads the metric names the tasks write (keys copied from each task's final_evaluate)."""

from __future__ import annotations

from multissl.report.metrics import fmt, loses, lower_is_better, mean_std, split_metrics


def test_baselines_of_each_task_are_found():
    graph = {"val/acc": 0.7, "test/acc": 0.8, "test/acc_last": 0.79, "test/random_init_acc": 0.72,
             "test/random_init_acc_last": 0.72}
    plain, bl, _ = split_metrics(graph)
    assert plain == ["val/acc", "test/acc", "test/acc_last"]
    assert [(b.key, b.floor) for b in bl["test/acc"]] == [("test/random_init_acc", True)]
    recsys = {"test/recall@20": 0.1, "test/popular_recall@20": 0.05, "test/untrained_recall@20": 0.01}
    _, bl, _ = split_metrics(recsys)
    assert {b.label for b in bl["test/recall@20"]} == {"most-popular", "untrained floor"}
    speech = {"test/keyword_acc": 0.9, "test/logmel_keyword_acc": 0.8, "test/random_keyword_acc": 0.5,
              "val/keyword_acc": 0.88, "val/logmel_keyword_acc": 0.79, "wall/tera_probe_s": 3.0}
    plain, bl, _ = split_metrics(speech)
    assert {b.key for b in bl["test/keyword_acc"]} == {"test/logmel_keyword_acc", "test/random_keyword_acc"}
    assert "wall/tera_probe_s" in plain and "val/logmel_keyword_acc" not in plain
    forecast = {"test/mse": 0.4, "test/mae": 0.4, "test/last_value_mse": 0.5, "test/last_value_mae": 0.45}
    _, bl, _ = split_metrics(forecast)
    assert bl["test/mse"][0].label == "last value" and not bl["test/mse"][0].floor


def test_a_prefix_alone_is_not_a_baseline():
    """``test/knn_acc`` beside ``test/acc`` is not a baseline: ``knn`` is not a baseline name; and a
    ``random_`` key whose twin is missing stays a metric."""
    plain, bl, _ = split_metrics({"test/acc": 0.5, "test/knn_acc": 0.4, "test/random_x": 0.1})
    assert plain == ["test/acc", "test/knn_acc", "test/random_x"] and bl == {}


def test_intervals():
    m = {"test/rsum": 50.0, "test/rsum_ci_low": 45.0, "test/rsum_ci_high": 55.0,
         "test/10/map": 0.3, "test/10/map_std": 0.02, "test/mrr_lo": 0.1}
    plain, _, iv = split_metrics(m)
    assert iv == {"test/rsum": {"low": 45.0, "high": 55.0}, "test/10/map": {"std": 0.02}}
    assert plain == ["test/rsum", "test/10/map", "test/mrr_lo"]  # no test/mrr: an ordinary metric


def test_direction_and_losses():
    assert lower_is_better("test/mse") and lower_is_better("val/chamfer_l2") and lower_is_better("wall/x_s")
    assert not lower_is_better("test/knn_acc") and not lower_is_better("samples_per_s")
    assert loses(0.5, 0.6, "test/acc") and not loses(0.6, 0.6, "test/acc")
    assert loses(0.6, 0.5, "test/mse") and not loses(float("nan"), 0.5, "test/acc")


def test_mean_std_and_format():
    assert mean_std([1.0, 2.0, 3.0]) == (2.0, 1.0, 3)
    m, s, n = mean_std([0.5, float("nan")])
    assert (m, s, n) == (0.5, None, 1)
    assert fmt(0.891666) == "0.8917" and fmt(94.8848) == "94.88" and fmt(None) == "-"
    assert fmt(1.5e-5) == "1.5e-05" and fmt(123456.0) == "1.23e+05"
