"""The command line: fast help, recipe listing, and clear errors with exit code 2 and nothing written."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multissl.cli import main
from multissl.train.checkpoint import WEIGHTS


def test_help_is_fast_and_imports_no_torch():
    code = "import sys, time; t=time.time(); from multissl.cli import main; " \
           "import contextlib, io\nwith contextlib.redirect_stdout(io.StringIO()):\n  " \
           "\n  try: main(['--help'])\n  except SystemExit: pass\n" \
           "print(time.time()-t, 'torch' in sys.modules)"
    t = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    wall = time.time() - t
    elapsed, torch_loaded = out.stdout.split()
    assert torch_loaded == "False"
    assert float(elapsed) < 1.0 and wall < 5


def test_recipes_lists_shipped(capsys):
    assert main(["recipes"]) == 0
    assert "tabular/scarf-digits" in capsys.readouterr().out


@pytest.mark.parametrize("override, message", [
    ("train.lrr=0.1", "Unknown recipe key 'train.lrr'. Did you mean 'train.lr'?"),
    ("train.epochs=abc", "'train.epochs' must be an integer"),
    ("method.corruption_rat=0.1", "Did you mean 'method.corruption_rate'?"),
    ("train.precision=fp8", "must be one of"),
    ("data.path=no/such/table.csv", "table not found: 'no/such/table.csv'"),
])
def test_bad_recipe_inputs_fail_clearly(override, message, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "tabular/scarf-digits", override, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not run.exists()


def test_unknown_recipe_suggests(capsys):
    assert main(["train", "tabular/scarf-digit"]) == 2
    assert "Did you mean 'tabular/scarf-digits'?" in capsys.readouterr().err


def test_corrupt_checkpoint_fails_clearly_without_traceback(tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "multissl.cli", "train", "tabular/scarf-digits", "train.max_steps=3",
            "train.progress=false"]
    assert subprocess.run(base + ["--run-dir", str(run)], env=env, capture_output=True).returncode == 0
    weights = run / "checkpoints" / "last" / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:100])
    before = sorted(p.name for p in run.rglob("*"))
    out = subprocess.run(base + ["--resume", str(run)], env=env, capture_output=True, text=True)
    assert out.returncode == 2
    assert "corrupt" in out.stderr and "Traceback" not in out.stderr
    assert sorted(p.name for p in run.rglob("*")) == before


def test_missing_resume_folder(capsys, tmp_path):
    assert main(["train", "tabular/scarf-digits", "--resume", str(tmp_path / "nope")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_every_shipped_recipe_validates():
    from multissl.recipes import list_recipes, load_recipe

    for name in list_recipes():
        load_recipe(name)  # raises RecipeError on any unknown key or bad value


def test_eval_and_bench_listings(capsys):
    assert main(["eval", "--help"]) == 0
    assert main(["bench"]) == 0
    assert "overhead" in capsys.readouterr().out


def test_project_layout():
    root = Path(__file__).resolve().parents[1]
    for p in ("pyproject.toml", "README.md", "Makefile", ".ci/run", "data/README.md"):
        assert (root / p).exists(), p
