"""Trainer behaviour: schedules, accumulation, NaN stop keeping the last good checkpoint, outputs."""

import json

import pytest
import torch

from multissl.core import LossOutput, Method
from multissl.errors import TrainingDivergedError
from multissl.tasks import TaskParts
from multissl.train.config import TrainConfig
from multissl.train.schedules import lr_multiplier
from multissl.train.trainer import EpochBatches, Trainer


class Regression(Method):
    """Least squares on fixed data; returns NaN from ``nan_at`` forward calls on."""

    def __init__(self, nan_at=None):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)
        self.calls, self.nan_at = 0, nan_at
        self.hooks = []

    def forward(self, batch):
        self.calls += 1
        x, y = batch[:, :4], batch[:, 4:]
        loss = ((self.lin(x) - y) ** 2).mean()
        if self.nan_at is not None and self.calls >= self.nan_at:
            loss = loss * float("nan")
        return LossOutput(loss, {"calls": self.calls})

    def before_step(self, progress):
        self.hooks.append(("before", progress.step))

    def after_step(self, progress):
        self.hooks.append(("after", progress.step))

    def embed(self, batch):
        return self.lin(batch[:, :4])


def _data(n=64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return torch.cat([x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])], 1)


def test_schedules():
    f = lr_multiplier("cosine", 100, 10, 0.0)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(10) == pytest.approx(1.0) and f(100) == pytest.approx(0.0, abs=1e-9)
    assert lr_multiplier("linear", 10, 0, 0.5)(10) == pytest.approx(0.5)
    assert lr_multiplier("constant", 10, 2)(5) == 1.0


def test_epoch_batches_split_global_batches_over_processes():
    one = EpochBatches(20, 8, 1, 0, 3, True, True)
    r0, r1 = EpochBatches(20, 8, 2, 0, 3, True, True), EpochBatches(20, 8, 2, 1, 3, True, True)
    for b, b0, b1 in zip(one.epoch(1), r0.epoch(1), r1.epoch(1), strict=True):
        assert b == b0 + b1
    assert one.epoch(0) != one.epoch(1)


def test_training_converges_and_writes_outputs(tmp_path):
    method = Regression()
    cfg = TrainConfig(epochs=30, batch_size=16, lr=0.1, optimizer="sgd", progress=False, log_every=4,
                      scheduler="cosine", warmup_steps=3, grad_accum_steps=2)
    res = Trainer(TaskParts(method, _data(), evaluate=lambda m: {"val/neg_mse": -1.0}), cfg, tmp_path).fit()
    assert res["steps"] == 30 * (64 // 16) // 2
    loss = ((method.lin(_data()[:, :4]) - _data()[:, 4:]) ** 2).mean().item()
    assert loss < 0.05
    assert method.hooks[0] == ("before", 0) and method.hooks[1] == ("after", 1)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in r for r in rows) and any("val/neg_mse" in r for r in rows)
    assert (tmp_path / "plots" / "curves.png").exists()
    assert (tmp_path / "checkpoints" / "last" / "model.safetensors").exists()


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    method = Regression(nan_at=7)
    cfg = TrainConfig(epochs=5, batch_size=16, lr=0.01, progress=False, checkpoint_every=2)
    with pytest.raises(TrainingDivergedError, match="loss became nan at step 7"):
        Trainer(TaskParts(method, _data()), cfg, tmp_path).fit()
    state = json.loads((tmp_path / "checkpoints" / "last" / "trainer_state.json").read_text())
    assert state["step"] == 6
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))


def test_best_checkpoint_is_selected_on_validation(tmp_path):
    values = iter([0.1, 0.9, 0.3, 0.2])
    cfg = TrainConfig(epochs=4, batch_size=16, lr=0.01, progress=False, select_metric="val/score")
    res = Trainer(TaskParts(Regression(), _data(), evaluate=lambda m: {"val/score": next(values)},
                            final_evaluate=lambda m: {"test/x": 1.0}), cfg, tmp_path).fit()
    assert res["selected_checkpoint"] == "best" and res["best_step"] == 8 and res["best_metric"] == 0.9


def test_select_metric_may_not_be_a_test_metric():
    from multissl.config import from_dict
    from multissl.errors import RecipeError

    with pytest.raises(RecipeError, match="never a test metric"):
        from_dict(TrainConfig, {"select_metric": "test/acc"}, "train")


class DtypeRecorder(Regression):
    """Regression that records the dtype its linear layer computes in: training forward and ``embed``."""

    def __init__(self):
        super().__init__()
        self.train_dtypes, self.eval_dtypes = set(), set()

    def forward(self, batch):
        self.train_dtypes.add(self.lin(batch[:, :4]).dtype)
        return super().forward(batch)

    def embed(self, batch):
        out = super().embed(batch)
        self.eval_dtypes.add(out.dtype)
        return out


def _mse(method):
    with torch.no_grad():
        return float(((method.lin(_data()[:, :4]) - _data()[:, 4:]) ** 2).mean())


@pytest.mark.parametrize(("precision", "dtype"), [("bf16", torch.bfloat16), ("no", torch.float32)])
def test_bf16_autocast_runs_on_cpu(tmp_path, precision, dtype):
    """precision=bf16 computes the training forward in bf16 (fp32 without it: the control), keeps fp32
    master weights that still learn (the error falls below a fifth of the untrained model's), and
    validation (which embeds, as every task's evaluation does, or calls the method) runs in full precision."""
    method = DtypeRecorder()
    before = _mse(method)
    cfg = TrainConfig(max_steps=40, batch_size=16, lr=0.05, progress=False, precision=precision, eval_every=20)
    eval_forward_dtypes = set()

    def evaluate(m):  # embeds, and also calls the method itself, as some tasks' evaluations do
        m.train_dtypes, seen = set(), m.train_dtypes
        m(_data())
        eval_forward_dtypes.update(m.train_dtypes)
        m.train_dtypes = seen
        return {"val/x": float(m.embed(_data()).mean())}

    res = Trainer(TaskParts(method, _data(), evaluate=evaluate), cfg, tmp_path).fit()
    assert res["steps"] == 40
    assert method.train_dtypes == {dtype} and method.eval_dtypes == {torch.float32}
    assert eval_forward_dtypes == {torch.float32}
    assert method.lin.weight.dtype == torch.float32
    assert _mse(method) < 0.2 * before, (before, _mse(method))


def test_resumed_run_logs_each_step_once_and_keeps_the_replaced_tail(tmp_path):
    """An interrupted run logged steps 1-10 but checkpointed at 6: the resumed run's log restarts after 6."""
    from multissl.train.logging import MetricsLogger, read_metrics

    first = MetricsLogger(tmp_path, tensorboard=False)
    for step in range(1, 11):
        first.log(step, {"loss": float(step)})
    first.close()
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 11, "lo')  # a row cut by the kill
    resumed = MetricsLogger(tmp_path, tensorboard=False, resume_step=6)
    resumed.log(7, {"loss": 70.0})
    resumed.close()
    assert [(r["step"], r["loss"]) for r in read_metrics(tmp_path)] == [(s, float(s)) for s in range(1, 7)] + [(7, 70.0)]
    replaced = (tmp_path / "metrics.replaced.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in replaced[:4]] == [7, 8, 9, 10] and len(replaced) == 5


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 autocast is a GPU setting")
def test_fp16_on_cpu_is_refused_not_silently_trained_in_fp32(tmp_path):
    from multissl.errors import RecipeError

    cfg = TrainConfig(max_steps=2, batch_size=16, progress=False, precision="fp16")
    with pytest.raises(RecipeError, match="precision=fp16 needs a CUDA GPU"):
        Trainer(TaskParts(DtypeRecorder(), _data()), cfg, tmp_path)
