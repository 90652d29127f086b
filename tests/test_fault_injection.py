"""A run killed at three moments and resumed ends with the weights of an uninterrupted run, bit for
bit, and one metrics row per step.

The moments: mid-step (inside the 5th forward), while ``checkpoints/last`` is being replaced (right
after the old ``last`` was renamed away, the new one complete in its temporary folder), and while
the temporary checkpoint folder is being written (weights written, optimizer / RNG / state not yet).
The fast test stops the run in-process with an exception nothing catches (no checkpoint code runs
after it); the slow one sends the process a real SIGKILL at the same moments.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from multissl.cli import main

RECIPE = ["tabular/scarf-digits", "train.max_steps=6", "train.checkpoint_every=2", "method.hidden=16",
          "method.encoder_layers=1", "train.progress=false", "train.log_every=1"]
MOMENTS = ("mid_step", "replacing_last", "writing_tmp")


class Killed(BaseException):
    """Stands for kill -9: nothing in the trainer catches it."""


def _arm(moment: str, monkeypatch, kill) -> None:
    """Make the run die at ``moment`` by calling ``kill()`` (raise in-process, or SIGKILL)."""
    import multissl.train.checkpoint as ckpt

    calls = {"n": 0}
    if moment == "mid_step":
        from multissl.tabular import methods

        cls = methods.ScarfMethod
        original = cls.forward

        def forward(self, batch):
            calls["n"] += 1
            if calls["n"] == 5:
                kill()
            return original(self, batch)
        monkeypatch.setattr(cls, "forward", forward)
    elif moment == "replacing_last":
        original_rename = Path.rename

        def rename(self, target):
            out = original_rename(self, target)
            if Path(target).name == ".last.old":
                calls["n"] += 1
                if calls["n"] == 1:  # the second write of last (step 4): step 2 moved away, step 4 in tmp
                    kill()
            return out
        monkeypatch.setattr(Path, "rename", rename)
    else:
        original_save = ckpt.save_weights

        def save_weights(module, path):
            original_save(module, path)
            calls["n"] += 1
            if calls["n"] == 2:  # the step-4 checkpoint: weights in the temp folder, the rest missing
                kill()
        monkeypatch.setattr(ckpt, "save_weights", save_weights)


def _weights(run: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(run / "checkpoints" / "last" / "model.safetensors"))


def _loss_steps(run: Path) -> list[int]:
    rows = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["step"] for r in rows if "loss" in r]


def _check(run: Path, reference: Path) -> None:
    import torch

    ref, got = _weights(reference), _weights(run)
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert _loss_steps(run) == list(range(1, 7))
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".")]
    timing = {"wall_s", "cpu_s"}  # the run's budget differs between any two runs
    got, want = (json.loads((r / "results.json").read_text()) for r in (run, reference))
    assert {k: v for k, v in got.items() if k not in timing} == {k: v for k, v in want.items() if k not in timing}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", *RECIPE, "--run-dir", str(run)]) == 0
    return run


@pytest.mark.parametrize("moment", MOMENTS)
def test_killed_run_resumes_bitwise(moment, reference, tmp_path, monkeypatch):
    run = tmp_path / "run"

    def kill():
        raise Killed(moment)

    with monkeypatch.context() as m:
        _arm(moment, m, kill)
        with pytest.raises(Killed):
            main(["train", *RECIPE, "--run-dir", str(run)])
    assert main(["train", *RECIPE, "--resume", str(run)]) == 0
    _check(run, reference)


CHILD = """
import os, signal, sys
import pytest
sys.path.insert(0, {tests!r})
from test_fault_injection import _arm, RECIPE
from multissl.cli import main
mp = pytest.MonkeyPatch()
_arm({moment!r}, mp, lambda: os.kill(os.getpid(), signal.SIGKILL))
main(["train", *RECIPE, "--run-dir", {run!r}])
"""


@pytest.mark.slow
@pytest.mark.parametrize("moment", MOMENTS)
def test_sigkilled_run_resumes_bitwise(moment, reference, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = CHILD.format(tests=str(Path(__file__).parent), moment=moment, run=str(run))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert out.returncode == -9, out.stderr[-2000:]
    resumed = subprocess.run([sys.executable, "-m", "multissl.cli", "train", *RECIPE, "--resume", str(run)],
                             env=env, capture_output=True, text=True, check=False)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    _check(run, reference)
