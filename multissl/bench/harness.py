"""One format for every benchmark: ``Measurement`` rows printed as a table and appended as JSON lines
to ``runs/bench/<bench>.jsonl`` (what, ours, peer, unit, ratio, machine, versions), which
``multissl bench report`` gathers into one cross-modal table."""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Measurement:
    """One comparison: our figure beside the peer's on the same work.

    ``higher_is_better`` says how to read the ratio ours/peer (for times, lower is better and the
    ratio printed is ours/peer too: < 1 means we are faster).
    """

    bench: str
    what: str
    ours: float
    peer: float | None
    unit: str
    peer_name: str = ""
    higher_is_better: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if self.peer in (None, 0):
            return None
        return self.ours / self.peer


def machine_info() -> dict[str, Any]:
    """Where a figure was measured: CPU/GPU, thread count and package versions."""
    import torch

    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                            "torch": torch.__version__, "python": platform.python_version()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    try:
        import multissl

        info["multissl"] = multissl.__version__
    except Exception:  # pragma: no cover
        pass
    return info


def bench_dir() -> Path:
    return Path(os.environ.get("MULTISSL_BENCH_DIR", "runs/bench"))


def record(measurements: list[Measurement], out_dir: Path | None = None) -> Path | None:
    """Print the table and append one JSON record per measurement."""
    if not measurements:
        return None
    print(format_table(measurements))
    out_dir = Path(out_dir or bench_dir())
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{measurements[0].bench}.jsonl"
    machine = machine_info()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with open(path, "a") as fh:
        for m in measurements:
            fh.write(json.dumps({**asdict(m), "ratio": m.ratio, "time": stamp, "machine": machine}) + "\n")
    print(f"records appended to {path}")
    return path


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4g}"


def format_table(rows: list[Measurement]) -> str:
    header = ["bench", "what", "ours", "peer", "unit", "ratio (ours/peer)", "peer name"]
    body = [[m.bench, m.what, _fmt(m.ours), _fmt(m.peer), m.unit, _fmt(m.ratio), m.peer_name] for m in rows]
    widths = [max(len(str(r[i])) for r in [header, *body]) for i in range(len(header))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths])] + [line(r) for r in body])


def timed(fn: Callable[[], Any], repeats: int = 1, sync: Callable[[], None] | None = None) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        if sync:
            sync()
        t = time.perf_counter()
        fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - t)
    return best


def report(argv: list[str]) -> int:
    """``multissl bench report [DIR]``: the latest record of every (bench, what) in one table + markdown."""
    folder = Path(argv[0]) if argv and not argv[0].startswith("-") else bench_dir()
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(folder.glob("*.jsonl")):
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                latest[(rec["bench"], rec["what"])] = rec
    if not latest:
        print(f"no benchmark records under {folder}; run `multissl bench NAME` first")
        return 1
    rows = [Measurement(r["bench"], r["what"], r["ours"], r["peer"], r["unit"], r.get("peer_name", ""),
                        r.get("higher_is_better", True)) for r in latest.values()]
    table = format_table(rows)
    print(table)
    (folder / "REPORT.md").write_text("```\n" + table + "\n```\n")
    print(f"wrote {folder / 'REPORT.md'}")
    return 0
