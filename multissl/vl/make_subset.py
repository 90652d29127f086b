"""Build ``data/flickr8k-mini`` from the staged Flickr8k subset: the first N images of each split of
``captions.jsonl`` (file order), copied unchanged with their 5 captions, plus the terms note.

    python -m multissl.vl.make_subset path/to/vl data/flickr8k-mini --train 150 --val 50 --test 50
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--train", type=int, default=150)
    ap.add_argument("--val", type=int, default=50)
    ap.add_argument("--test", type=int, default=50)
    a = ap.parse_args(argv)
    src, dst = Path(a.src), Path(a.dst)
    (dst / "images").mkdir(parents=True, exist_ok=True)
    want = {"train": a.train, "val": a.val, "test": a.test}
    kept = []
    for line in (src / "captions.jsonl").read_text().splitlines():
        row = json.loads(line)
        if want.get(row["split"], 0) > 0:
            want[row["split"]] -= 1
            shutil.copy(src / row["image"], dst / row["image"])
            kept.append(line)
    (dst / "captions.jsonl").write_text("\n".join(kept) + "\n")
    for name in ("TERMS.md", "SOURCES.md"):
        if (src / name).exists():
            shutil.copy(src / name, dst / name)
    print(f"{len(kept)} images -> {dst}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
