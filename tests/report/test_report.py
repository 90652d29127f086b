"""`multissl report` on a fixture of tiny real runs: the page's numbers are the runs' results.json,
floors are flagged, seeds are summarised as mean +- std, every picture it links exists, and it scales."""

from __future__ import annotations

import json
import shutil
import statistics
from html.parser import HTMLParser
from pathlib import Path

import pytest

from multissl.errors import MultisslError
from multissl.report.build import write_report
from multissl.report.metrics import fmt, loses, split_metrics


class Cells(HTMLParser):
    """Every <td>/<img>/<a>/<link>/<script> with its attributes and text."""

    def __init__(self) -> None:
        super().__init__()
        self.tds: list[dict[str, str]] = []
        self.imgs: list[str] = []
        self.refs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "td":
            self.tds.append(a)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
        if tag in ("a", "link", "img", "iframe"):
            self.refs.append(a.get("href") or a.get("src") or "")
        self.scripts += tag == "script"


@pytest.fixture(scope="module")
def page(runs_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    index = write_report([runs_dir], out)
    parser = Cells()
    parser.feed(index.read_text())
    return out, parser, json.loads((out / "report.json").read_text())


def _results(runs_dir: Path) -> dict[str, dict]:
    return {f"{p.parent.parent.name}/{p.parent.name}": json.loads(p.read_text())
            for p in runs_dir.glob("*/*/results.json")}


def test_table_numbers_are_the_runs_results(runs_dir, page):
    _, cells, report = page
    results = _results(runs_dir)
    assert len(results) == 4
    seen: dict[str, set[str]] = {run: set() for run in results}
    for td in cells.tds:
        run, key = td.get("data-run"), td.get("data-key")
        if not run or "data-value" not in td:
            continue
        value = float(td["data-value"])
        res = results[run]
        if key == "seed":
            assert value == res["seed"]
        elif key == "steps":
            assert value == res["steps"]
        elif key == "epochs":
            assert value == res["epochs"]
        elif key == "selected":
            assert value == res["best_metric"]
        else:
            assert value == res["metrics"][key], (run, key)
        seen[run].add(key)
    for run, res in results.items():  # every test metric of every run is on the page
        plain, baselines, _ = split_metrics(res["metrics"])
        tests = {k for k in plain if k.startswith("test/")}
        floors = {b.key for k in tests for b in baselines.get(k, [])}
        assert tests | floors <= seen[run], (run, (tests | floors) - seen[run])
    # report.json carries the same numbers
    for mod in report["modalities"].values():
        for g in mod["groups"]:
            for r in g["runs"]:
                assert r["metrics"] == results[r["run"]]["metrics"]
    assert set(report["modalities"]) == {"graph", "tabular", "text"}


def test_mean_and_std_over_seeds(runs_dir, page):
    _, cells, report = page
    scarf = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("scarf-digits/*/results.json"))]
    assert sorted(r["seed"] for r in scarf) == [1, 2]
    group = report["modalities"]["tabular"]["groups"][0]
    assert len(group["runs"]) == 2 and group["headline"] == "test/knn_acc"
    for key in ("test/knn_acc", "test/linear_acc"):
        vals = [r["metrics"][key] for r in scarf]
        mean_cells = [td for td in cells.tds if td.get("data-mean-key") == key]
        assert len(mean_cells) == 1
        assert float(mean_cells[0]["data-mean"]) == pytest.approx(statistics.fmean(vals), abs=1e-12)
        assert float(mean_cells[0]["data-std"]) == pytest.approx(statistics.stdev(vals), abs=1e-12)
        assert group["summary"][key]["n"] == 2
    overview = {row["modality"]: row for row in report["overview"]}
    assert overview["tabular"]["headline"]["mean"] == pytest.approx(statistics.fmean(r["metrics"]["test/knn_acc"]
                                                                                    for r in scarf))


def test_runs_below_their_floor_are_flagged(runs_dir, page):
    _, cells, report = page
    graph = json.loads(next(runs_dir.glob("graphmae-cora/*/results.json")).read_text())["metrics"]
    expected = {k for k in ("test/acc", "test/acc_last") if loses(graph[k], graph[k.replace("/", "/random_init_")], k)}
    flagged = {td["data-key"] for td in cells.tds if "lose" in td.get("class", "") and td.get("data-run")}
    assert flagged == expected
    g = report["modalities"]["graph"]["groups"][0]
    assert g["flagged_runs"] == (1 if expected else 0)
    assert report["overview"][0]["modality"] == "graph"


def test_a_run_below_its_floor_is_flagged_not_hidden(runs_dir, tmp_path):
    """A copy of the graph run whose test accuracy is set below its random-init floor."""
    src = next(runs_dir.glob("graphmae-cora/*"))
    runs = tmp_path / "runs"
    dst = runs / "graphmae-cora" / src.name
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    res = json.loads((dst / "results.json").read_text())
    res["metrics"]["test/acc"] = res["metrics"]["test/random_init_acc"] - 0.1
    (dst / "results.json").write_text(json.dumps(res))
    html = write_report([runs], tmp_path / "out").read_text()
    cells = Cells()
    cells.feed(html)
    lost = [td for td in cells.tds if td.get("data-key") == "test/acc" and "lose" in td.get("class", "")]
    assert lost and float(lost[0]["data-value"]) == res["metrics"]["test/acc"]
    assert "lose to their own floor" in html
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["overview"][0]["flagged_runs"] == 1


def test_every_linked_image_exists_and_nothing_is_fetched(page):
    out, cells, report = page
    assert cells.imgs, "no pictures"
    for src in cells.imgs:
        assert not src.startswith(("http:", "https:", "/", "file:")), src
        assert (out / src).is_file() and (out / src).stat().st_size > 1000, src
    assert all(not r.startswith(("http:", "https:", "//")) for r in cells.refs)
    assert cells.scripts == 0
    for mod in report["modalities"].values():
        for g in mod["groups"]:
            assert g["curves"] and (out / g["curves"]).is_file()
    links = [r for r in cells.refs if r.endswith((".json", ".md"))]  # each run's results + model card
    assert len(links) == 5 and all((out / r).resolve().is_file() for r in links)
    anchors = {f"#mod-{m}" for m in report["modalities"]}
    assert anchors <= {r for r in cells.refs if r.startswith("#")}


def test_bench_records_latest_per_measurement(page):
    _, cells, report = page
    text = report["modalities"]["text"]["bench"]
    assert len(text) == 1 and text[0]["records"] == 2 and text[0]["ours"] == 420.0
    assert text[0]["ratio"] == pytest.approx(420.0 / 400.0)
    graph = report["modalities"]["graph"]["bench"]
    assert [b["peer_name"] for b in graph] == ["DGL GAT", "PyG GAT"]  # one row per peer
    assert graph[0]["higher_is_better"] is False
    ratios = [float(td["data-value"]) for td in cells.tds if td.get("data-key") == "ratio"]
    assert pytest.approx(420.0 / 400.0) in ratios and pytest.approx(0.12 / 0.15) in ratios
    overview = {row["modality"]: row for row in report["overview"]}
    assert overview["text"]["peer"]["peer_name"] == "sentence-transformers"


def test_starting_score_beside_the_selected_one(runs_dir, page):
    """train.eval_at_start logs the starting model's validation score at step 0; the table shows it."""
    _, _, report = page
    run = next(runs_dir.glob("simcse-minilm/*"))
    first = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert first["step"] == 0
    (entry,) = report["modalities"]["text"]["groups"][0]["runs"]
    assert entry["start"]["val/stsb_spearman"] == first["val/stsb_spearman"]
    assert f"(step 0: {fmt(first['val/stsb_spearman'])})" in (page[0] / "index.html").read_text()


def test_budget_is_recorded(runs_dir, page):
    _, _, report = page
    for mod in report["modalities"].values():
        for g in mod["groups"]:
            for r in g["runs"]:
                b = r["budget"]
                assert b["steps"] >= 1 and b["wall_s"] > 0 and b["cpu_s"] > 0 and not r["wall_estimated"]


def test_model_card_of_the_text_export(runs_dir):
    import yaml

    run = next(runs_dir.glob("simcse-minilm/*"))
    card = (run / "export" / "README.md").read_text()
    assert card.startswith("---\n")
    meta = yaml.safe_load(card.split("---\n")[1])
    res = json.loads((run / "results.json").read_text())
    assert meta["library_name"] == "sentence-transformers"
    assert meta["base_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    # wiki1m is CC BY-SA 4.0, but STS-B's sentences keep their sources' licences: no single id
    assert meta["license"] == "other" and "CC BY-SA 4.0" in card
    metrics = {m["name"]: m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]}
    assert metrics["test/stsb_spearman"] == res["metrics"]["test/stsb_spearman"]
    assert "SentenceTransformer(" in card and "## Licence" in card and "wiki1m" in card
    assert not any((p / "export").exists() for p in runs_dir.glob("scarf-digits/*"))


def test_model_card_of_a_backbone_export(tmp_path):
    """An image backbone folder (weights file only) gets a card with the loading code and its data licence."""
    import torch
    import yaml
    from safetensors.torch import save_file

    from multissl.data import project_root
    from multissl.report.card import write_model_card

    recipe = yaml.safe_load((project_root() / "recipes/tabular/scarf-digits.yaml").read_text())
    save_file({"w": torch.zeros(2)}, str(tmp_path / "backbone.safetensors"))
    results = {"metrics": {"test/acc": 0.5, "test/random_init_acc": 0.6, "test/acc_ci_low": 0.45,
                           "test/acc_ci_high": 0.55}, "seed": 3, "steps": 10}
    card = write_model_card(tmp_path, recipe, results).read_text()
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["license"] == "cc-by-4.0" and meta["pipeline_tag"] == "image-feature-extraction"
    assert "| test/acc | 0.5 | [0.45, 0.55] | random-init floor 0.6 |" in card
    assert "load_file(" in card
    assert write_model_card(tmp_path / "nothing", recipe, results) is None


def test_five_hundred_runs(runs_dir, tmp_path):
    """500 runs of 5 recipes (copies of a real run with shifted numbers): grouped, summarised, folded."""
    src = next(runs_dir.glob("scarf-digits/*"))
    recipe = (src / "recipe.yaml").read_text()
    base = json.loads((src / "results.json").read_text())
    runs = tmp_path / "runs"
    expected = {}
    for i in range(500):
        name = f"scarf-digits-v{i % 5}"
        d = runs / name / f"20260101-{i:06d}"
        d.mkdir(parents=True)
        (d / "recipe.yaml").write_text(recipe.replace("name: scarf-digits", f"name: {name}", 1)
                                       .replace("seed: 1", f"seed: {1000 + i}", 1))
        res = dict(base, seed=1000 + i, metrics={k: v + (i % 7) * 1e-3 for k, v in base["metrics"].items()})
        (d / "results.json").write_text(json.dumps(res))
        shutil.copy(src / "metrics.jsonl", d / "metrics.jsonl")
        expected.setdefault(name, []).append(res["metrics"]["test/knn_acc"])
    out = tmp_path / "out"
    html = write_report([runs], out).read_text()
    report = json.loads((out / "report.json").read_text())
    groups = report["modalities"]["tabular"]["groups"]
    assert len(groups) == 5 and all(len(g["runs"]) == 100 for g in groups)
    for g in groups:
        assert g["summary"]["test/knn_acc"]["mean"] == pytest.approx(statistics.fmean(expected[g["recipe"]]))
    assert html.count("<details>") == 5  # long run lists start folded
    assert len(list((out / "img").iterdir())) == 5
    assert len(html) < 3_000_000


def test_bad_inputs_fail_clearly(tmp_path, capsys):
    from multissl.cli import main

    with pytest.raises(MultisslError, match="no run folders"):
        write_report([tmp_path], tmp_path / "out")
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_a_broken_run_is_listed_not_fatal(runs_dir, tmp_path):
    src = next(runs_dir.glob("scarf-digits/*"))
    runs = tmp_path / "runs"
    shutil.copytree(src, runs / "scarf-digits" / "a", ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    shutil.copytree(src, runs / "scarf-digits" / "b", ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    (runs / "scarf-digits" / "b" / "results.json").write_text("{not json")
    html = write_report([runs], tmp_path / "out").read_text()
    assert "unreadable results.json" in html


@pytest.mark.slow
def test_page_renders_in_headless_chromium(page, tmp_path):
    """A real browser: non-blank screenshot, no console error, every <img> loaded (~10 s)."""
    from multissl.report.browser import check_page, find_chromium

    if find_chromium() is None:
        pytest.skip("no Chromium installed (apt-get install chromium, or set MULTISSL_CHROMIUM)")
    out, cells, _ = page
    res = check_page(out / "index.html", tmp_path / "shot.png")
    assert res["errors"] == []
    assert len(res["images"]) == len(cells.imgs) and all(ok for _, ok in res["images"])
    assert res["ink_fraction"] > 0.01 and res["ok"]
    # the check can fail: a missing picture is reported
    broken = out / "broken.html"
    broken.write_text((out / "index.html").read_text().replace("</body>", '<img src="img/none.png"></body>'))
    bad = check_page(broken, tmp_path / "bad.png")
    assert not bad["ok"] and ("img/none.png", False) in bad["images"]


def test_recipes_that_differ_are_told_apart(runs_dir, tmp_path):
    """Two runs of one recipe name with another override are two recipes, titled by the override."""
    runs = tmp_path / "runs"
    for i, src in enumerate(sorted(runs_dir.glob("scarf-digits/*"))):
        shutil.copytree(src, runs / "scarf-digits" / str(i), ignore=shutil.ignore_patterns("checkpoints", "tensorboard"))
    recipe = runs / "scarf-digits" / "1" / "recipe.yaml"
    recipe.write_text(recipe.read_text().replace("  epochs: 1\n", "  epochs: 7\n", 1))
    write_report([runs], tmp_path / "out")
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    groups = report["modalities"]["tabular"]["groups"]
    assert sorted(g["title"] for g in groups) == ["scarf-digits (train.epochs=1)", "scarf-digits (train.epochs=7)"]
    # the overview shows the recipe with the better validation score, whatever its test score
    best = max(groups, key=lambda g: g["summary"]["selected"]["mean"])
    assert report["overview"][0]["headline"]["recipe"] == best["title"]
