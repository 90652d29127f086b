"""``--resume`` honours what the user asks: a changed learning rate acts from the resume step and is
recorded in ``resume_history.jsonl``; the advice printed when a run diverges, followed literally,
finishes the run."""

from __future__ import annotations

import json
import math
import re
import shlex
from pathlib import Path

import pytest

from multissl.cli import main

BASE = ["timeseries/dlinear-etth1", "train.checkpoint_every=2", "train.progress=false", "train.log_every=1",
        "train.optimizer=sgd"]


def _rows(run: Path) -> list[dict]:
    return [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]


TINY = ["tabular/scarf-digits", "train.checkpoint_every=2", "method.hidden=16", "method.encoder_layers=1",
        "train.progress=false", "train.log_every=1"]


def test_resume_with_new_lr_applies_from_the_resume_step_and_is_recorded(tmp_path):
    run = tmp_path / "run"
    assert main(["train", *TINY, "train.max_steps=4", "train.lr=0.01", "--run-dir", str(run)]) == 0
    assert main(["train", *TINY, "train.max_steps=8", "train.lr=0.002", "--resume", str(run)]) == 0
    lrs = {r["step"]: r["lr"] for r in _rows(run) if "lr" in r}
    assert [lrs[s] for s in range(1, 5)] == [0.01] * 4 and [lrs[s] for s in range(5, 9)] == [0.002] * 4
    history = [json.loads(ln) for ln in (run / "resume_history.jsonl").read_text().splitlines()]
    assert history[-1]["step"] == 4 and history[-1]["changes"] == {"train.lr": [0.01, 0.002],
                                                                   "train.max_steps": [4, 8]}
    assert "lr: 0.002" in (run / "recipe.yaml").read_text()


def test_following_the_divergence_advice_works(tmp_path, capsys):
    run = tmp_path / "run"
    args = [*BASE, "train.max_steps=16", "train.lr=10", "train.warmup_steps=10"]
    assert main(["train", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    advice = re.search(r"multissl (train .+?) \(or set", err)
    assert "The loss became" in err and advice, err
    assert main(shlex.split(advice.group(1))) == 0
    losses = [r["loss"] for r in _rows(run) if "loss" in r]
    assert len(losses) == 16 and all(isinstance(v, float) and math.isfinite(v) for v in losses)


@pytest.mark.parametrize("spike,resume_from,step", [({6: float("nan")}, "--resume {run} ", 4),
                                                     ({5: 1e6, 6: float("nan")}, "checkpoints/previous", 2)])
def test_divergence_advice_names_a_checkpoint_that_works(spike, resume_from, step, tmp_path, capsys, monkeypatch):
    """NaN at step 6 after a healthy step 5: resume from ``last`` (step 4). A spike at step 5 (finite but
    1e6 x) then NaN: ``last`` is already bad, so the message sends the user to ``checkpoints/previous``
    (step 2). Following the advice (the spike gone, as a lower rate would do) finishes the run with one
    metrics row per step and the resume recorded."""
    import torch

    from multissl.tabular import methods

    run = tmp_path / "run"
    args = [*TINY, "train.max_steps=8"]
    original, calls = methods.ScarfMethod.forward, {"n": 0}

    def forward(self, batch):
        calls["n"] += 1
        out = original(self, batch)
        if calls["n"] in spike:
            out.loss = out.loss * spike[calls["n"]]
        return out

    with monkeypatch.context() as m:
        m.setattr(methods.ScarfMethod, "forward", forward)
        assert main(["train", *args, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    advice = re.search(r"multissl (train .+?) \(or set", err)
    assert advice and resume_from.format(run=run) in advice.group(1) + " " and f"step {step})" in err, err
    assert main(shlex.split(advice.group(1))) == 0
    steps = [r["step"] for r in _rows(run) if "loss" in r]
    assert steps == list(range(1, 9))
    history = [json.loads(ln) for ln in (run / "resume_history.jsonl").read_text().splitlines()]
    assert history[-1]["step"] == step and "train.lr" in history[-1]["changes"]
    assert (run / "checkpoints" / "abandoned-step4").is_dir() == (step == 2)
    assert torch.isfinite(torch.tensor([r["loss"] for r in _rows(run) if "loss" in r])).all()
