"""Defect 4: a short SimCLR run with 2 processes (torchrun, gloo) logs the same per-step losses as one
process on the same global batch. What makes it equal: the same data order (global batches cut per
rank), per-sample augmentations seeded by (seed, step, micro-batch) rather than by rank
(``batch_rand``), NT-Xent over gathered embeddings, ``train.sync_batchnorm`` (global-batch BatchNorm
statistics), DDP's mean of gradients, and the logged loss averaged over processes. Only float
summation order differs, and the optimizer amplifies it step by step: on one install the gap was
4.8e-6 at step 4, on a fresh install of the same pins (newer accelerate / numpy) 1.6e-4 (steps 1-3:
0, 5e-7, 2e-6). The tolerance is 1e-3 on losses of about 3-4; the defects it guards against are far
above it (without sync batch norm the gap was up to 0.139 when this test was written)."""

import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("dist_simclr_worker.py")


def _losses(run_dir: Path) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def test_two_processes_match_one_process_on_the_global_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    two = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            str(WORKER), str(tmp_path / "two")], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    one = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    _, err = two.communicate(timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, err[-3000:]
    a, b = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(a) == len(b) == 4
    assert max(abs(x - y) for x, y in zip(a, b, strict=True)) < 1e-3, (a, b)
    assert a[0] != a[-1]  # the weights moved: later steps compare trained models
