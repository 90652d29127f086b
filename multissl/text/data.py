"""Sentences to train on and sentence pairs to evaluate with (STS-B, SentEval STS12-16 / SICK-R, `datasets`).

Training corpora: a ``.txt`` file (one sentence per line, ``.gz`` allowed), a ``.csv``/``.tsv``/``.jsonl``
column, or a Hugging Face ``datasets`` name written ``hf:NAME[:SPLIT[:COLUMN]]`` (online users).

STS sets (gold score per pair, Spearman of cosine similarities):
- STS Benchmark release layout: TAB-separated ``genre, file, year, id, score, sentence1, sentence2``
  (extra trailing fields ignored; ``.gz`` allowed); SentEval's ``STSBenchmark/sts-{split}.csv`` is the same;
- SentEval STS12-16: a folder of ``STS.input.<name>.txt`` (TAB-separated pairs) with ``STS.gs.<name>.txt``
  (one gold score per line, empty = unscored pair, dropped), either file gzipped or not, or one such
  input file; results are keyed by year (``STS14/headlines``) via :func:`sts_label`;
- SICK-R: ``SICK_train.txt`` / ``SICK_trial.txt`` / ``SICK_test_annotated.txt`` (header row with
  ``sentence_A, sentence_B, relatedness_score``), or the full release ``SICK.txt`` whose ``SemEval_set``
  column (TRAIN / TRIAL / TEST) gives the split (``test`` = the 4,927 pairs papers report), or a folder
  holding either (pick with ``split``);
- ``hf:NAME[:SPLIT]`` (e.g. ``hf:sentence-transformers/stsb:test``, ``hf:mteb/sickr-sts:test``).
"""

from __future__ import annotations

import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from multissl.data import resolve_data_path
from multissl.errors import DataError

TEXT_COLUMNS = ("text", "sentence", "sentences", "content", "doc")
S1_COLUMNS = ("sentence1", "sentence_A", "sentence_a", "text1", "s1", "premise")
S2_COLUMNS = ("sentence2", "sentence_B", "sentence_b", "text2", "s2", "hypothesis")
SCORE_COLUMNS = ("score", "relatedness_score", "similarity_score", "label", "gold")


def _open_text(path: Path) -> io.TextIOBase:
    check_utf8(path)
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="\n")
    return open(path, encoding="utf-8", newline="\n")


def check_utf8(path: Path) -> None:
    """A DataError naming ``path`` and the byte offset when the (optionally gzipped) file is not UTF-8."""
    if str(path).endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            raw = fh.read()
    else:
        raw = Path(path).read_bytes()
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text: byte offset {exc.start} (0x{raw[exc.start]:02x}) cannot be "
                        "decoded; convert the file to UTF-8 (e.g. iconv -t utf-8)") from None


def _stem(path: Path) -> str:
    name = path.name
    return name.removesuffix(".gz")


def _hf_parts(source: str) -> tuple[str, str, str | None]:
    parts = source[3:].split(":")
    name = parts[0]
    split = parts[1] if len(parts) > 1 and parts[1] else "train"
    column = parts[2] if len(parts) > 2 and parts[2] else None
    return name, split, column


def _load_hf(name: str, split: str):
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a core dependency
        raise DataError("Reading 'hf:' sources needs the `datasets` package") from None
    try:
        return datasets.load_dataset(name, split=split)
    except Exception as exc:  # noqa: BLE001 - many error types (offline, missing split, ...)
        raise DataError(f"Cannot load datasets '{name}' split '{split}': {type(exc).__name__}: {str(exc)[:200]}. "
                        "Offline? Pass a local file instead.") from None


def load_sentences(source: str, column: str | None = None, limit: int | None = None) -> list[str]:
    """Non-empty sentences from a text file, a table column or ``hf:NAME[:SPLIT[:COLUMN]]``."""
    if source.startswith("hf:"):
        name, split, col = _hf_parts(source)
        ds = _load_hf(name, split)
        col = column or col or next((c for c in TEXT_COLUMNS if c in ds.column_names), ds.column_names[0])
        rows = ds[col] if limit is None else ds.select(range(min(limit, len(ds))))[col]
        return [str(s).strip() for s in rows if s and str(s).strip()]
    path = resolve_data_path(source, "sentence corpus")
    stem = _stem(path)
    out: list[str] = []
    if stem.endswith((".csv", ".tsv")):
        import pandas as pd

        check_utf8(path)
        frame = pd.read_csv(path, sep="\t" if stem.endswith(".tsv") else ",")
        col = column or next((c for c in TEXT_COLUMNS if c in frame.columns), None)
        if col is None or col not in frame.columns:
            raise DataError(f"{path}: no text column (have {list(frame.columns)}); set data.column")
        out = [str(s).strip() for s in frame[col].dropna().tolist()]
    elif stem.endswith((".jsonl", ".json")):
        with _open_text(path) as fh:
            for line in fh:
                if not line.strip():
                    continue
                rec = json.loads(line)
                col = column or next((c for c in TEXT_COLUMNS if c in rec), None)
                if col is None:
                    raise DataError(f"{path}: no text field in {sorted(rec)}; set data.column")
                out.append(str(rec[col]).strip())
                if limit is not None and len(out) >= limit:
                    break
    else:
        with _open_text(path) as fh:
            for line in fh:
                s = line.rstrip("\n").strip()
                if s:
                    out.append(s)
                if limit is not None and len(out) >= limit:
                    break
    out = [s for s in out if s]
    if not out:
        raise DataError(f"{path} holds no sentences")
    return out[:limit] if limit is not None else out



@dataclass
class STSPairs:
    """Sentence pairs with gold similarity scores; ``note`` says which pairs of the source were kept."""

    s1: list[str]
    s2: list[str]
    scores: torch.Tensor  # (N,) float
    name: str = "sts"
    note: str = ""

    def __len__(self) -> int:
        return len(self.s1)

    def head(self, n: int | None) -> STSPairs:
        if n is None or n >= len(self):
            return self
        return STSPairs(self.s1[:n], self.s2[:n], self.scores[:n], self.name,
                        f"first {n} of {len(self)} pairs" + (f"; {self.note}" if self.note else ""))


def _stsb_file(path: Path) -> STSPairs:
    s1, s2, y = [], [], []
    with _open_text(path) as fh:
        for n, line in enumerate(fh, 1):
            fields = line.rstrip("\n").split("\t")  # plain TAB split: sentences hold unbalanced quotes
            if len(fields) < 7:
                if line.strip():
                    raise DataError(f"{path}:{n}: expected STS-B layout (7 TAB-separated fields), got {len(fields)}")
                continue
            try:
                score = float(fields[4])
            except ValueError:
                if n == 1:  # a header row
                    continue
                raise DataError(f"{path}:{n}: score field '{fields[4]}' is not a number") from None
            s1.append(fields[5])
            s2.append(fields[6])
            y.append(score)
    return STSPairs(s1, s2, torch.tensor(y), _stem(path))


SENTEVAL_INPUT = ("STS.input.*.txt", "STS.input.*.txt.gz")


def _senteval_gold(path: Path) -> Path:
    """``STS.gs.<name>.txt`` beside ``STS.input.<name>.txt[.gz]`` (either compressed or not)."""
    stem = _stem(path).replace("STS.input.", "STS.gs.")
    for cand in (path.with_name(stem), path.with_name(stem + ".gz")):
        if cand.exists():
            return cand
    raise DataError(f"{path}: gold file {stem}[.gz] not found beside it")


def _senteval_input(path: Path) -> STSPairs:
    gold = _senteval_gold(path)
    with _open_text(path) as fh:
        pairs = [line.rstrip("\n").split("\t") for line in fh]
    with _open_text(gold) as fh:
        scores = [line.strip() for line in fh]
    if pairs and pairs[-1] == [""]:
        pairs.pop()
    if len(pairs) != len(scores):
        raise DataError(f"{path}: {len(pairs)} pairs but {len(scores)} gold lines in {gold.name}")
    s1, s2, y = [], [], []
    for p, s in zip(pairs, scores, strict=True):
        if s == "" or len(p) < 2:  # SentEval drops unscored pairs
            continue
        s1.append(p[0])
        s2.append(p[1])
        y.append(float(s))
    dropped = len(pairs) - len(s1)
    note = f"{dropped} unscored pairs dropped (SentEval)" if dropped else ""
    return STSPairs(s1, s2, torch.tensor(y), _stem(path).replace("STS.input.", "").removesuffix(".txt"), note)


SICK_SETS = {"train": "TRAIN", "dev": "TRIAL", "trial": "TRIAL", "valid": "TRIAL", "test": "TEST"}
SICK_FILES = {"train": "SICK_train.txt", "dev": "SICK_trial.txt", "trial": "SICK_trial.txt",
              "test": "SICK_test_annotated.txt"}


def _sick_file(path: Path, split: str | None = None) -> STSPairs:
    """A SICK file. The full release (``SICK.txt``) has a ``SemEval_set`` column (TRAIN / TRIAL / TEST):
    ``split`` picks those rows (``all`` keeps every pair) and the note says how many were scored."""
    with _open_text(path) as fh:
        header = fh.readline().rstrip("\n").split("\t")
        try:
            a, b, r = header.index("sentence_A"), header.index("sentence_B"), header.index("relatedness_score")
        except ValueError:
            raise DataError(f"{path}: not a SICK file (header {header[:6]})") from None
        col = header.index("SemEval_set") if "SemEval_set" in header else None
        rows = [line.rstrip("\n").split("\t") for line in fh if line.strip()]
    width = max(a, b, r) if col is None else max(a, b, r, col)
    rows = [f for f in rows if len(f) > width]
    total = len(rows)
    note = ""
    if col is not None and split not in (None, "all", ""):
        want = SICK_SETS.get(split)
        if want is None:
            raise DataError(f"{path}: unknown split '{split}' for SICK's SemEval_set; use train, dev (TRIAL), test "
                            "or all")
        rows = [f for f in rows if f[col].strip().upper() == want]
        if not rows:
            raise DataError(f"{path}: no pair has SemEval_set={want}")
        note = f"SemEval_set={want}: {len(rows)} of {total} pairs"
    elif col is not None:
        note = f"all {total} pairs (every SemEval_set)"
    name = "SICK-R" + (f"/{split}" if col is not None and split not in (None, "", "all") else "")
    return STSPairs([f[a] for f in rows], [f[b] for f in rows], torch.tensor([float(f[r]) for f in rows]), name,
                    note)


def _hf_sts(source: str) -> STSPairs:
    name, split, _ = _hf_parts(source)
    ds = _load_hf(name, split)
    cols = ds.column_names
    c1 = next((c for c in S1_COLUMNS if c in cols), None)
    c2 = next((c for c in S2_COLUMNS if c in cols), None)
    cs = next((c for c in SCORE_COLUMNS if c in cols), None)
    if None in (c1, c2, cs):
        raise DataError(f"datasets '{name}': cannot find sentence1/sentence2/score columns in {cols}")
    return STSPairs([str(x) for x in ds[c1]], [str(x) for x in ds[c2]], torch.tensor(ds[cs], dtype=torch.float),
                    name)


def _concat(parts: list[STSPairs], name: str) -> STSPairs:
    notes = [f"{p.name}: {p.note}" for p in parts if p.note]
    return STSPairs([s for p in parts for s in p.s1], [s for p in parts for s in p.s2],
                    torch.cat([p.scores for p in parts]), name, "; ".join(notes))


_YEAR = re.compile(r"STS(\d\d)")


def sts_label(source: str) -> str:
    """A short label of an STS source for result keys: ``STS12`` for a SentEval ``STS12-en-test`` folder
    (or a file inside one), else the folder / file name. Keys carry it so years never collide."""
    if source.startswith("hf:"):
        return source[3:]
    path = Path(source)
    for part in (path.name, path.parent.name):
        m = _YEAR.match(part)
        if m:
            return f"STS{m.group(1)}"
    return path.name


def _senteval_inputs(path: Path) -> list[Path]:
    found: dict[str, Path] = {}
    for pattern in SENTEVAL_INPUT:
        for p in sorted(path.glob(pattern)):
            found.setdefault(_stem(p), p)  # a plain copy wins over its .gz twin
    return [found[k] for k in sorted(found)]


def load_sts(source: str, split: str = "test") -> list[STSPairs]:
    """Every STS subset found at ``source`` (one for a file, several for a SentEval STS12-16 folder)."""
    if source.startswith("hf:"):
        return [_hf_sts(source)]
    path = resolve_data_path(source, "STS data")
    if path.is_dir():
        inputs = _senteval_inputs(path)
        if inputs:
            return [_senteval_input(p) for p in inputs]
        sick = path / SICK_FILES.get(split, "")
        if split in SICK_FILES and sick.is_file():
            return [_sick_file(sick)]
        for full in ("SICK.txt", "SICK.txt.gz"):
            if (path / full).exists():
                return [_sick_file(path / full, split)]
        for cand in (f"sts-{split}.csv", f"sts-{split}.csv.gz"):
            if (path / cand).exists():
                return [_stsb_file(path / cand)]
        raise DataError(f"{path}: no STS files found (STS.input.*.txt[.gz], SICK.txt, SICK_*.txt or "
                        f"sts-{split}.csv[.gz])")
    name = _stem(path)
    if name.startswith("STS.input."):
        parts = [_senteval_input(path)]
    elif name.startswith("SICK"):
        parts = [_sick_file(path, split)]
    else:
        parts = [_stsb_file(path)]
    if not len(parts[0]):
        raise DataError(f"{path} holds no scored sentence pairs; give an STS-B, SentEval or SICK file")
    return parts


def load_sts_all(source: str, split: str = "test") -> STSPairs:
    """All subsets at ``source`` concatenated (SentEval's 'all' setting, as SimCSE reports)."""
    parts = load_sts(source, split)
    return parts[0] if len(parts) == 1 else _concat(parts, Path(source).name)


# The table SimCSE / SentEval papers print: STS12-16 ("all" over each year's subsets), STS-B test, SICK-R test.
SENTEVAL_SUITE = ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness")


def find_senteval_suite(root: str) -> dict[str, Path]:
    """The seven SentEval STS sources under ``root`` (SentEval's ``data/downstream`` or any folder holding
    ``STS/STS12-en-test`` .. ``STS16-en-test``, ``STSBenchmark/sts-test.csv[.gz]`` and ``SICK/`` with
    ``SICK_test_annotated.txt`` or ``SICK.txt``). Fails naming every missing one: the table is all or none."""
    base = resolve_data_path(root, "SentEval folder")
    if not base.is_dir():
        raise DataError(f"--suite senteval needs a folder, got the file {base}")
    dirs = [base, *sorted(p for p in base.rglob("*") if p.is_dir())]
    found: dict[str, Path] = {}
    for d in dirs:
        m = _YEAR.match(d.name)
        if m and f"STS{m.group(1)}" in SENTEVAL_SUITE and _senteval_inputs(d):
            found.setdefault(f"STS{m.group(1)}", d)
        if "STSBenchmark" not in found and any((d / f).exists() for f in ("sts-test.csv", "sts-test.csv.gz")):
            found["STSBenchmark"] = d
        if "SICKRelatedness" not in found and any((d / f).exists() for f in
                                                  ("SICK_test_annotated.txt", "SICK.txt", "SICK.txt.gz")):
            found["SICKRelatedness"] = d
    missing = [k for k in SENTEVAL_SUITE if k not in found]
    if missing:
        raise DataError(f"{base}: the SentEval STS table needs {', '.join(missing)} (looked for STS1x-en-test folders "
                        "of STS.input.*.txt[.gz], sts-test.csv[.gz], SICK_test_annotated.txt or SICK.txt); "
                        "pass --data for the sets you have instead of --suite")
    return {k: found[k] for k in SENTEVAL_SUITE}
