"""contrastive.pairs across processes: 2 processes (torchrun, gloo, 4 rows each) give the loss and the
DDP-averaged gradients of 1 process on the global batch of 8, with the duplicate mask applied across
processes (a positive of rank 0 is a negative of rank 1), also through GradCache; SupCon likewise (its
label positives span processes). Without gathering they differ."""

import json
import os
import subprocess
import sys
from pathlib import Path

WORKER = Path(__file__).with_name("dist_pairs_worker.py")


def _close(a: list[float], b: list[float], tol: float) -> bool:
    return len(a) == len(b) and max(abs(x - y) for x, y in zip(a, b, strict=True)) < tol


def test_two_processes_match_one_process_on_the_global_batch(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    two = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            str(WORKER), str(tmp_path / "two.json")], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    one = subprocess.run([sys.executable, str(WORKER), str(tmp_path / "one.json")], check=False, cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300)
    _, err = two.communicate(timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, err[-3000:]
    a, b = json.loads((tmp_path / "one.json").read_text()), json.loads((tmp_path / "two.json").read_text())
    for name in ("gather", "gather_symmetric", "gather_learnable_t", "gather_gradcache", "no_mask"):
        assert abs(a[name]["loss"] - b[name]["loss"]) < 1e-5, (name, a[name]["loss"], b[name]["loss"])
        assert _close(a[name]["grads"], b[name]["grads"], 1e-5), name
    # the mask sees duplicates across processes: 1 process and 2 processes count the same, and the
    # cross-process duplicate changes the loss (so the mask is not a no-op here)
    assert a["gather"]["masked"] == b["gather"]["masked"] >= 1
    assert abs(b["gather"]["loss"] - b["no_mask"]["loss"]) > 1e-3
    # local-only keys (gather off) is a different loss: the equality above is not automatic
    assert abs(a["local_only"]["loss"] - b["local_only"]["loss"]) > 1e-3
    assert not _close(a["local_only"]["grads"], b["local_only"]["grads"], 1e-4)
    # SupCon gathers the same way: equal with gathering (also through GradCache), different without
    for name in ("supcon", "supcon_gradcache"):
        assert abs(a[name]["loss"] - b[name]["loss"]) < 1e-5, (name, a[name]["loss"], b[name]["loss"])
        assert _close(a[name]["grads"], b[name]["grads"], 1e-5), name
    assert abs(a["supcon_local_only"]["loss"] - b["supcon_local_only"]["loss"]) > 1e-3
