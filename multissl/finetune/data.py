"""The user's own data for contrastive fine-tuning: tables of pairs / triplets / labels, and labelled
image or audio files.

Tables: ``.csv`` / ``.tsv`` (``.gz`` allowed; ``header: false`` names the columns ``0, 1, ...``),
``.jsonl`` / ``.json`` (one record per line), ``.parquet``, or ``hf:NAME[:SPLIT]`` (a Hugging Face
``datasets`` name, for online users; ``hf_config`` picks a configuration). Columns are named in the
recipe: ``anchor``, ``positive``, any number of ``negatives`` columns, an optional ``id`` column
(rows sharing an id are never each other's negatives) and, for SupCon, ``text`` + ``label``.

Files: a folder tree or a ``.tar(.gz)`` archive of images or audio clips; the label is the parent
folder's name (``ROOT/<class>/<file>``, ImageFolder's layout), or group 1 of ``label_regex`` matched
against the file name (``^(\\d)_`` reads FSDD's ``{digit}_{speaker}_{take}.wav``).
"""

from __future__ import annotations

import hashlib
import io
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multissl.data import resolve_data_path
from multissl.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def _stem(path: Path) -> str:
    return path.name.removesuffix(".gz")


def read_table(source: str, *, header: bool = True, hf_config: str | None = None, limit: int | None = None):
    """A pandas DataFrame of a CSV / TSV / JSONL / Parquet file or of ``hf:NAME[:SPLIT]``."""
    import pandas as pd

    if source.startswith("hf:"):
        name, _, split = source[3:].partition(":")
        try:
            import datasets

            ds = datasets.load_dataset(name, hf_config, split=split or "train")
        except Exception as exc:  # noqa: BLE001 - offline, missing split, ...
            raise DataError(f"Cannot load datasets '{name}' (config {hf_config}, split '{split or 'train'}'): "
                            f"{type(exc).__name__}: {str(exc)[:200]}. Offline? Pass a local file instead.") from None
        if limit is not None:
            ds = ds.select(range(min(limit, len(ds))))
        return ds.to_pandas()
    path = resolve_data_path(source, "table")
    stem = _stem(path)
    try:
        if stem.endswith((".csv", ".tsv")):
            if stem.endswith(".tsv") or _sniff_tab(path):
                frame = _read_tab(path, header, limit)
            else:
                frame = pd.read_csv(path, header=0 if header else None, nrows=limit, dtype=str, keep_default_na=False)
        elif stem.endswith((".jsonl", ".json")):
            lines = stem.endswith(".jsonl") or _is_json_lines(path)
            frame = pd.read_json(path, lines=lines, dtype=False, **({"nrows": limit} if lines else {}))
        elif stem.endswith(".parquet"):
            frame = pd.read_parquet(path)
        else:
            raise DataError(f"{path}: unknown table format; use .csv, .tsv, .jsonl, .json, .parquet or hf:NAME")
    except DataError:
        raise
    except Exception as exc:  # noqa: BLE001 - parser errors come in many types
        raise DataError(f"Cannot read table {path}: {type(exc).__name__}: {str(exc)[:200]}") from None
    frame.columns = [str(c) for c in frame.columns]
    return frame.head(limit) if limit is not None else frame


def _read_tab(path: Path, header: bool, limit: int | None):
    """TAB-separated rows without quoting; fields past the first row's width are ignored (STS-B has some)."""
    import gzip

    import pandas as pd

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", newline="\n") as fh:
        rows = [line.rstrip("\n").rstrip("\r").split("\t") for line in fh if line.strip()]
    if not rows:
        raise DataError(f"{path} is empty")
    width = len(rows[0])
    names = rows.pop(0) if header else [str(i) for i in range(width)]
    rows = [(r + [""] * width)[:width] for r in rows[:limit]]
    return pd.DataFrame(rows, columns=names)


def _sniff_tab(path: Path) -> bool:
    """Whether a .csv file is really TAB-separated (the STS Benchmark release is)."""
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    return first.count("\t") > first.count(",")


def _is_json_lines(path: Path) -> bool:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return not fh.read(1).lstrip().startswith("[")


def _column(frame, name: str, source: str) -> list[str]:
    if name not in frame.columns:
        from multissl.errors import did_you_mean

        raise DataError(f"{source}: no column '{name}'.{did_you_mean(name, list(frame.columns))} "
                        f"Columns: {list(frame.columns)[:20]} (set the data.*_column keys in the recipe)")
    return ["" if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in frame[name].tolist()]


def text_id(text: str) -> int:
    """A stable 63-bit id of a string (duplicate texts in a batch share it)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little") >> 1


@dataclass
class PairRows:
    """Anchors with their positive and K hard negatives (K may be 0), plus ids for false-negative masking."""

    anchors: list[str]
    positives: list[str]
    negatives: list[list[str]] = field(default_factory=list)  # (N, K)
    groups: list[int] | None = None  # optional user id per row (same id = same item)

    def __len__(self) -> int:
        return len(self.anchors)

    @property
    def num_negatives(self) -> int:
        return len(self.negatives[0]) if self.negatives else 0

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"anchor": self.anchors[i], "positive": self.positives[i],
                "negatives": self.negatives[i] if self.negatives else [],
                "group": None if self.groups is None else self.groups[i]}


def load_pairs(source: str, anchor: str = "anchor", positive: str = "positive", negatives: list[str] | None = None,
               id_column: str | None = None, *, header: bool = True, hf_config: str | None = None,
               limit: int | None = None, score_column: str | None = None, min_score: float | None = None) -> PairRows:
    """(anchor, positive[, negatives...]) rows of a table; rows with an empty anchor/positive are dropped.

    ``score_column`` + ``min_score`` keep only rows scored at least ``min_score`` (e.g. STS pairs >= 4
    as paraphrase positives).
    """
    frame = read_table(source, header=header, hf_config=hf_config)
    a, p = _column(frame, anchor, source), _column(frame, positive, source)
    negs = [_column(frame, n, source) for n in (negatives or [])]
    keep = [i for i in range(len(a)) if a[i].strip() and p[i].strip() and all(n[i].strip() for n in negs)]
    if score_column is not None and min_score is not None:
        scores = _column(frame, score_column, source)
        try:
            keep = [i for i in keep if float(scores[i]) >= min_score]
        except ValueError as exc:
            raise DataError(f"{source}: column '{score_column}' is not numeric ({exc})") from None
    if limit is not None:
        keep = keep[:limit]
    if not keep:
        raise DataError(f"{source}: no usable ({anchor}, {positive}) rows")
    groups = None
    if id_column is not None:
        ids = _column(frame, id_column, source)
        groups = [text_id(ids[i]) for i in keep]
    return PairRows([a[i].strip() for i in keep], [p[i].strip() for i in keep],
                    [[n[i].strip() for n in negs] for i in keep] if negs else [], groups)


@dataclass
class ScoredPairs:
    """Sentence pairs with a gold similarity (STS-style evaluation of a pairs model)."""

    s1: list[str]
    s2: list[str]
    scores: torch.Tensor


def load_scored_pairs(source: str, s1: str, s2: str, score: str, *, header: bool = True,
                      limit: int | None = None) -> ScoredPairs:
    """Pairs and gold scores from three columns of any table layout."""
    frame = read_table(source, header=header)
    a, b, s = _column(frame, s1, source), _column(frame, s2, source), _column(frame, score, source)
    rows = [(x, y, float(z)) for x, y, z in zip(a, b, s, strict=True) if x and y and z.strip()]
    rows = rows[:limit] if limit is not None else rows
    if not rows:
        raise DataError(f"{source}: no scored pairs in columns ({s1}, {s2}, {score})")
    return ScoredPairs([r[0] for r in rows], [r[1] for r in rows], torch.tensor([r[2] for r in rows]))


@dataclass
class Labelled:
    """Items (strings, decoded images or waveforms) with integer labels and the class names."""

    items: list[Any]
    labels: torch.Tensor
    classes: list[str]
    names: list[str] = field(default_factory=list)  # file names / row numbers, for the split rules

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[Any, int]:
        return self.items[i], int(self.labels[i])

    def subset(self, index: list[int]) -> Labelled:
        return Labelled([self.items[i] for i in index], self.labels[index], self.classes,
                        [self.names[i] for i in index] if self.names else [])


def _sample(index: list[int], limit: int | None) -> list[int]:
    """A seeded random sample of ``limit`` indices in their original order (files come sorted by class,
    so the first N would hold few classes); all of them without a limit."""
    if limit is None or limit >= len(index):
        return index
    g = torch.Generator().manual_seed(0)
    chosen = torch.randperm(len(index), generator=g)[:limit].sort().values.tolist()
    return [index[i] for i in chosen]


def _encode_labels(raw: list[str], classes: list[str] | None) -> tuple[torch.Tensor, list[str]]:
    classes = classes if classes is not None else sorted(set(raw))
    index = {c: i for i, c in enumerate(classes)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise DataError(f"labels {unknown[:5]} are not among the training classes {classes[:10]}")
    return torch.tensor([index[r] for r in raw], dtype=torch.long), classes


def load_labelled_text(source: str, text: str = "text", label: str = "label", *, header: bool = True,
                       hf_config: str | None = None, classes: list[str] | None = None,
                       limit: int | None = None) -> Labelled:
    """(text, label) rows of a table; ``classes`` fixes the label order (the training split's);
    ``limit`` keeps a seeded random sample of that many rows."""
    frame = read_table(source, header=header, hf_config=hf_config)
    t, lab = _column(frame, text, source), _column(frame, label, source)
    keep = _sample([i for i in range(len(t)) if t[i].strip() and lab[i].strip()], limit)
    if not keep:
        raise DataError(f"{source}: no (text, label) rows in columns ({text}, {label})")
    labels, classes = _encode_labels([lab[i] for i in keep], classes)
    return Labelled([t[i].strip() for i in keep], labels, classes, [str(i) for i in keep])


def _labelled_members(source: str, suffixes: tuple[str, ...]) -> list[tuple[str, bytes]]:
    path = resolve_data_path(source, "labelled files")
    out: list[tuple[str, bytes]] = []
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            if f.suffix.lower() in suffixes and f.is_file():
                out.append((str(f.relative_to(path)), f.read_bytes()))
    elif path.name.endswith((".tar", ".tar.gz", ".tgz")):
        with tarfile.open(path) as tar:
            for member in sorted(tar.getmembers(), key=lambda m: m.name):
                if member.isfile() and Path(member.name).suffix.lower() in suffixes:
                    out.append((member.name, tar.extractfile(member).read()))
    else:
        raise DataError(f"{path}: expected a folder or a .tar(.gz) archive of {'/'.join(suffixes)} files")
    if not out:
        raise DataError(f"{path} holds no {'/'.join(suffixes)} files")
    return out


def _label_of(name: str, label_regex: str | None) -> str:
    if label_regex is None:
        parent = Path(name).parent.name
        if not parent:
            raise DataError(f"'{name}' sits in no class folder; use ROOT/<class>/<file> or set data.label_regex")
        return parent
    m = re.search(label_regex, Path(name).name)
    if m is None:
        raise DataError(f"data.label_regex {label_regex!r} does not match '{Path(name).name}'")
    return m.group(1) if m.groups() else m.group(0)


def decode_image(data: bytes) -> torch.Tensor:
    """Encoded image bytes -> (3, H, W) uint8."""
    from PIL import Image

    arr = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.uint8)
    return torch.from_numpy(arr.transpose(2, 0, 1).copy())


def decode_audio(data: bytes, sampling_rate: int) -> torch.Tensor:
    """Encoded wav / flac / ogg bytes -> mono float32 (T,) at ``sampling_rate`` (polyphase resampling)."""
    import soundfile as sf

    try:
        wave, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except RuntimeError as exc:
        raise DataError(f"Cannot decode audio: {exc}. Supported: wav, flac, ogg") from None
    wave = wave.mean(1)
    if sr != sampling_rate:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(sr, sampling_rate)
        wave = resample_poly(wave, sampling_rate // g, sr // g).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(wave))


def load_labelled_files(source: str, kind: str, *, label_regex: str | None = None, classes: list[str] | None = None,
                        sampling_rate: int = 16000, limit: int | None = None) -> Labelled:
    """Decoded images ((3, H, W) uint8) or waveforms ((T,) float32) of a folder / archive, with labels;
    ``limit`` keeps a seeded random sample of that many files."""
    if kind not in ("image", "audio"):
        raise DataError(f"kind must be 'image' or 'audio', got {kind!r}")
    members = _labelled_members(source, IMAGE_SUFFIXES if kind == "image" else AUDIO_SUFFIXES)
    members = [members[i] for i in _sample(list(range(len(members))), limit)]
    raw = [_label_of(name, label_regex) for name, _ in members]
    labels, classes = _encode_labels(raw, classes)
    items = [decode_image(d) if kind == "image" else decode_audio(d, sampling_rate) for _, d in members]
    return Labelled(items, labels, classes, [name for name, _ in members])


def split_by_name(data: Labelled, pattern: str | None) -> tuple[Labelled, Labelled | None]:
    """(items whose name does NOT match ``pattern``, items that do); (data, None) without a pattern."""
    if not pattern:
        return data, None
    rx = re.compile(pattern)
    hit = [i for i, n in enumerate(data.names) if rx.search(n)]
    if not hit:
        raise DataError(f"split pattern {pattern!r} matches none of the {len(data)} items")
    hit_set = set(hit)
    return data.subset([i for i in range(len(data)) if i not in hit_set]), data.subset(hit)


def split_fraction(data: Labelled, fraction: float, seed: int = 0) -> tuple[Labelled, Labelled]:
    """A seeded random (rest, held-out) split with ``fraction`` of the items held out."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(data), generator=g).tolist()
    n = max(1, round(fraction * len(data)))
    return data.subset(sorted(order[n:])), data.subset(sorted(order[:n]))
