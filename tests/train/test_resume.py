"""Exact resume: a run killed with SIGKILL mid-training and resumed reaches bitwise the same weights."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from safetensors.torch import load_file

ARGS = ["tabular/scarf-digits", "train.max_steps=120", "train.checkpoint_every=3", "method.hidden=768",
        "train.progress=false", "train.log_every=1"]


def _cli(extra, **kw):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "multissl.cli", "train", *ARGS, *extra], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _state(run: Path) -> dict:
    try:
        return json.loads((run / "checkpoints" / "last" / "trainer_state.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def test_kill_and_resume_gives_identical_weights(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    ref = _cli(["--run-dir", str(full)])
    victim = _cli(["--run-dir", str(killed)])
    deadline = time.time() + 180
    while _state(killed).get("step", 0) < 30 and time.time() < deadline and victim.poll() is None:
        time.sleep(0.02)
    assert victim.poll() is None, "run finished before it could be killed; make it longer"
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    stopped_at = _state(killed)["step"]
    assert 0 < stopped_at < 120
    out, err = ref.communicate(timeout=300)
    assert ref.returncode == 0, err[-2000:]
    resumed = subprocess.run([sys.executable, "-m", "multissl.cli", "train", *ARGS, "--resume", str(killed)],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a = load_file(str(full / "checkpoints" / "last" / "model.safetensors"))
    b = load_file(str(killed / "checkpoints" / "last" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert (a[k] == b[k]).all(), f"{k} differs after resume from step {stopped_at}"
    ra = json.loads((full / "results.json").read_text())
    rb = json.loads((killed / "results.json").read_text())
    assert ra["metrics"] == rb["metrics"] and ra["best_step"] == rb["best_step"]
    # the logs read as one uninterrupted run: each step once, the same losses as the full run's; the
    # killed run's rows after its checkpoint are kept aside, not lost
    la = [(r["step"], r.get("loss")) for r in map(json.loads, (full / "metrics.jsonl").read_text().splitlines())]
    lb = [(r["step"], r.get("loss")) for r in map(json.loads, (killed / "metrics.jsonl").read_text().splitlines())]
    assert [s for s, _ in lb] == [s for s, _ in la], "metrics.jsonl repeats or misses steps after resume"
    assert lb == la
