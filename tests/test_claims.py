"""Claims README and docs/notes make as checked, each with its test: MLM loss at the masked positions equals
the model's own loss, LARS, gradient clipping, fp16 / bf16 autocast, TensorBoard logs, `multissl bench
report`. (Multi-process == one process: tests/core/test_distributed.py.)"""

import json

import pytest
import torch

from multissl.core import LossOutput, Method
from multissl.tasks import TaskParts
from multissl.train.config import TrainConfig
from multissl.train.trainer import Trainer, build_optimizer


class LeastSquares(Method):
    """Linear least squares on a fixed table; ``scale`` inflates the gradients."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.lin = torch.nn.Linear(4, 1)
        self.scale = scale
        self.dtypes: set[torch.dtype] = set()

    def forward(self, batch):
        pred = self.lin(batch[:, :4])
        self.dtypes.add(pred.dtype)
        return LossOutput(self.scale * ((pred - batch[:, 4:]) ** 2).mean(), {})

    def embed(self, batch):
        return self.lin(batch[:, :4])


def _table(n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return torch.cat([x, x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]])], 1)


def _params(m: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in m.parameters()]).clone()


def test_mlm_loss_at_masked_positions_equals_the_models_own_loss():
    """docs/notes/text.md: MaskedLM computes vocabulary logits only at the masked positions; the loss equals
    the Hugging Face model's own full-sequence loss on the same masking (same seed)."""
    from transformers import BertConfig, BertForMaskedLM

    from multissl.encoders.hf import load_tokenizer
    from multissl.text.methods import MaskedLM

    tok = load_tokenizer("minilm")
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, pad_token_id=tok.pad_token_id)
    method = MaskedLM(BertForMaskedLM(cfg), tok).eval()  # eval: no dropout, both paths deterministic
    batch = dict(tok(["A man is playing a guitar on the stage.", "Two dogs run along the beach at dawn.",
                      "short"], padding=True, return_tensors="pt"))
    torch.manual_seed(3)
    ours = method(batch).loss
    method._head = lambda: None  # the fallback: the model's own loss over the full (B, L, V) logits
    torch.manual_seed(3)
    full = method(batch).loss
    assert torch.allclose(ours, full, atol=1e-5), (ours, full)
    assert ours > 1.0  # a random model: near log(vocab), so the comparison is not of two zeros


def test_lars_step_follows_its_formula():
    """LARS (You et al. 2017): a matrix moves by lr * eta * ||w|| / ||g + wd w|| * (g + wd w); a bias
    (1-D) skips the trust ratio and the decay; optimizer=lars in a recipe builds it."""
    from multissl.train.lars import LARS

    torch.manual_seed(0)
    w, b = torch.randn(3, 4, requires_grad=True), torch.randn(3, requires_grad=True)
    w.grad, b.grad = torch.randn(3, 4), torch.randn(3)
    w0, b0 = w.detach().clone(), b.detach().clone()
    LARS([w, b], lr=0.5, momentum=0.9, weight_decay=0.1, eta=0.02).step()
    d = w.grad + 0.1 * w0
    assert torch.allclose(w.detach(), w0 - 0.5 * 0.02 * w0.norm() / d.norm() * d, atol=1e-6)
    assert torch.allclose(b.detach(), b0 - 0.5 * b.grad, atol=1e-6)
    opt = build_optimizer(LeastSquares(), TrainConfig(optimizer="lars", lr=0.3, weight_decay=1e-4))
    assert isinstance(opt, LARS) and opt.param_groups[0]["weight_decay"] == 1e-4


@pytest.mark.parametrize("clip", [None, 0.01])
def test_gradient_clipping_bounds_the_update(tmp_path, clip):
    """train.clip_grad_norm: one plain SGD step (lr 1, no momentum) moves the weights by exactly the clipped
    gradient norm; without clipping (the control) by the raw one, far larger."""
    method = LeastSquares(scale=100.0)
    before = _params(method)
    cfg = TrainConfig(max_steps=1, batch_size=64, lr=1.0, optimizer="sgd", sgd_momentum=0.0, progress=False,
                      clip_grad_norm=clip)
    Trainer(TaskParts(method, _table()), cfg, tmp_path).fit()
    moved = float((_params(method) - before).norm())
    if clip is None:
        assert moved > 100 * 0.01
    else:
        assert moved == pytest.approx(clip, rel=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 autocast needs CUDA (on CPU use bf16)")
def test_fp16_autocast_on_cuda(tmp_path):
    """precision=fp16 (CUDA): the forward computes in float16 with a gradient scaler, and still learns."""
    method = LeastSquares()
    cfg = TrainConfig(max_steps=40, batch_size=16, lr=0.05, progress=False, precision="fp16")
    trainer = Trainer(TaskParts(method, _table()), cfg, tmp_path)
    trainer.fit()
    assert method.dtypes == {torch.float16} and trainer.accelerator.scaler is not None
    assert method.lin.weight.dtype == torch.float32
    with torch.no_grad():
        data = _table().to(method.lin.weight.device)
        assert float(((method.lin(data[:, :4]) - data[:, 4:]) ** 2).mean()) < 1.0


def test_tensorboard_events_hold_the_logged_metrics(tmp_path):
    """A run writes TensorBoard events under tensorboard/ carrying the same loss values as metrics.jsonl."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = TrainConfig(max_steps=8, batch_size=16, lr=0.05, progress=False, log_every=2)
    Trainer(TaskParts(LeastSquares(), _table()), cfg, tmp_path).fit()
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    tag = next(t for t in tags if t.endswith("loss"))
    tb = {e.step: e.value for e in events.Scalars(tag)}
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    jsonl = {r["step"]: r["loss"] for r in rows if "loss" in r}
    assert len(jsonl) >= 4 and set(jsonl) <= set(tb), (tags, sorted(tb), sorted(jsonl))
    for step, loss in jsonl.items():
        assert tb[step] == pytest.approx(loss, rel=1e-5)


def test_bench_report_gathers_the_latest_record_of_every_bench(tmp_path, capsys):
    """`multissl bench report DIR`: one row per (bench, what), the latest record winning, across files."""
    from multissl.bench.harness import Measurement, record
    from multissl.cli import main

    record([Measurement("text", "encode", 2.0, 4.0, "s", "sentence-transformers", False)], tmp_path)
    record([Measurement("text", "encode", 3.0, 4.0, "s", "sentence-transformers", False)], tmp_path)
    record([Measurement("graph", "epoch", 1.0, 2.0, "s", "PyG", False)], tmp_path)
    capsys.readouterr()
    assert main(["bench", "report", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = [line.split() for line in out.splitlines() if line.startswith(("text", "graph"))]
    assert sorted((r[0], r[1], r[2]) for r in rows) == [("graph", "epoch", "1"), ("text", "encode", "3")], out
    assert "0.75" in out and "0.5" in out  # ratios ours / peer
    assert (tmp_path / "REPORT.md").read_text().count("\n") >= 4
    assert main(["bench", "report", str(tmp_path / "empty")]) == 1
