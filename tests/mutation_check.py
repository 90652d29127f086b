"""Mutation check (issue 17): break one line of a core piece in a scratch copy of the tree, run the tests
that should notice, and print which went red. The working tree is never modified.

    OMP_NUM_THREADS=1 python tests/mutation_check.py              # every mutation (tens of minutes)
    OMP_NUM_THREADS=1 python tests/mutation_check.py ema_update   # one

Results and their reading: docs/notes/testing.md.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (file, the line as it is, the broken line, the tests to run)
MUTATIONS: dict[str, tuple[str, str, str, list[str]]] = {
    "info_nce": ("multissl/core/losses.py", "    logits = logits / temperature",
                 "    logits = -logits / temperature",  # every similarity's sign flipped
                 ["tests/core", "tests/image/test_image_train.py", "tests/tabular/test_scarf.py"]),
    "ema_update": ("multissl/core/momentum.py", "    if t_params:", "    if False:",  # target never moves
                   ["tests/core", "tests/image/test_image_methods.py", "tests/image/test_image_train.py",
                    "tests/text/test_methods.py"]),
    "queue_push": ("multissl/core/queue.py", "        self._keys[idx] = keys.to(self._keys.device)", "        pass",  # keys never stored
                   ["tests/core", "tests/image/test_image_methods.py", "tests/image/test_image_train.py"]),
    "simclr_jitter": ("multissl/image/augment.py",
                      "            x = color_jitter(x, c.brightness, c.contrast, c.saturation, c.hue, c.jitter_p)",
                      "            pass",  # SimCLR's colour distortion dropped
                      ["tests/image"]),
    "graphmae_mask": ("multissl/graph/methods.py",
                      "            out[token_nodes] = 0.0\n            out[noise_nodes]",
                      "            out[noise_nodes]",  # masked nodes keep their features (plus the token)
                      ["tests/graph"]),
    "supcon_views": ("multissl/finetune/views.py",
                     "            views = [self.batch_views(items) for _ in range(self.num_views)]",
                     "            views = [self.batch_views(items)] * self.num_views",  # one view, repeated
                     ["tests/finetune/test_views.py"]),
    "tera_alter": ("multissl/speech/alterations.py", "                    out[i, chosen.to(x.device)] = 0",
                   "                    pass",  # time alteration's zeroing dropped
                   ["tests/speech"]),
}


def run(name: str) -> list[str]:
    """The tests that failed with mutation ``name`` applied (node ids)."""
    file, old, new, tests = MUTATIONS[name]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "tree"
        shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", "runs", ".venv", "__pycache__"))
        text = (copy / file).read_text()
        if text.count(old) != 1:
            raise SystemExit(f"{name}: the line to break is not found exactly once in {file}; update MUTATIONS")
        (copy / file).write_text(text.replace(old, new))
        env = {**os.environ, "PYTHONPATH": str(copy)}
        proc = subprocess.run([sys.executable, "-m", "pytest", *tests, "-q", "-p", "no:randomly"], cwd=copy,
                              env=env, capture_output=True, text=True, check=False)
    return re.findall(r"^FAILED (\S+)", proc.stdout, flags=re.M)


def main(argv: list[str]) -> int:
    names = argv or list(MUTATIONS)
    missed = []
    for name in names:
        red = run(name)
        print(f"{name}: {len(red)} red" + "".join(f"\n  {t}" for t in red), flush=True)
        if not red:
            missed.append(name)
    if missed:
        print(f"NOT CAUGHT: {', '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
