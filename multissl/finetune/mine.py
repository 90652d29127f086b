"""Hard-negative mining: embed a corpus with the current model and give each (anchor, positive) row
its top-k most similar non-positive texts, skipping near-duplicates of the positive.

The rules follow sentence-transformers' ``util.mine_hard_negatives`` (and NV-Retriever's positive-aware
margins, Moreira et al. 2024): candidates are the corpus (by default every positive of the data set)
ranked by cosine similarity to the anchor; the anchor's own text and every positive of that anchor are
never negatives; ``range_min`` skips the closest ranks (often unlabelled positives), ``range_max``
bounds the depth; ``max_score`` drops candidates scoring above a ceiling; ``margin`` keeps only
candidates with ``score <= positive_score - margin`` and ``relative_margin`` those with
``score <= positive_score * (1 - relative_margin)``. ``sampling="top"`` keeps the k best survivors,
``"random"`` k random ones of them. Rows with fewer than k survivors are dropped (reported).

Command line (writes a table with columns anchor, positive, negative_1..negative_k)::

    python -m multissl.finetune.mine --data pairs.csv --model minilm --num-negatives 3 --out triplets.jsonl
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from multissl.errors import DataError
from multissl.finetune.data import PairRows


@dataclass
class MiningStats:
    rows_in: int
    rows_out: int
    mean_positive_score: float
    mean_negative_score: float

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@torch.no_grad()
def mine_hard_negatives(
    rows: PairRows, embed: Callable[[list[str]], torch.Tensor], *, corpus: list[str] | None = None,
    num_negatives: int = 3, range_min: int = 0, range_max: int | None = None, max_score: float | None = None,
    margin: float | None = None, relative_margin: float | None = None, sampling: str = "top", seed: int = 0,
    batch_size: int = 1024,
) -> tuple[PairRows, MiningStats]:
    """``rows`` with ``num_negatives`` mined negatives appended to each row's given negatives.

    ``embed(texts) -> (N, D)`` is the current model's embedding function.
    """
    if sampling not in ("top", "random"):
        raise ValueError(f"sampling must be 'top' or 'random', got {sampling!r}")
    if num_negatives < 1:
        raise ValueError("num_negatives must be >= 1")
    texts = list(dict.fromkeys((corpus or []) + rows.positives))
    index = {t: i for i, t in enumerate(texts)}
    anchors = list(dict.fromkeys(rows.anchors))
    a_index = {t: i for i, t in enumerate(anchors)}
    emb_c = F.normalize(embed(texts).float(), dim=-1)  # (C, D)
    emb_a = F.normalize(embed(anchors).float(), dim=-1)  # (A, D)
    # every positive of the same anchor (and the anchor's own text) is excluded
    excluded: dict[int, set[int]] = {}
    for a, p in zip(rows.anchors, rows.positives, strict=True):
        s = excluded.setdefault(a_index[a], set())
        s.add(index[p])
        if a in index:
            s.add(index[a])
    depth = min(len(texts), range_max if range_max is not None else len(texts))
    gen = torch.Generator().manual_seed(seed)
    keep_rows, negatives, pos_scores, neg_scores = [], [], [], []
    n = len(rows)
    for start in range(0, n, batch_size):
        idx = list(range(start, min(n, start + batch_size)))
        ai = torch.tensor([a_index[rows.anchors[i]] for i in idx])
        pi = torch.tensor([index[rows.positives[i]] for i in idx])
        q = emb_a[ai]  # (b, D)
        scores = q @ emb_c.t()  # (b, C)
        pos = scores.gather(1, pi[:, None]).squeeze(1)  # (b,)
        for r, i in enumerate(idx):
            ex = torch.tensor(sorted(excluded[int(ai[r])]))
            scores[r, ex] = float("-inf")
        top_s, top_i = scores.topk(depth, dim=1)  # (b, depth)
        ok = torch.isfinite(top_s)
        ok[:, :range_min] = False
        if max_score is not None:
            ok &= top_s <= max_score
        if margin is not None:
            ok &= top_s <= pos[:, None] - margin
        if relative_margin is not None:
            ok &= top_s <= pos[:, None] * (1 - relative_margin)
        for r, i in enumerate(idx):
            cand = ok[r].nonzero().squeeze(1)
            if cand.numel() < num_negatives:
                continue
            if sampling == "random":
                cand = cand[torch.randperm(cand.numel(), generator=gen)[:num_negatives]].sort().values
            chosen = cand[:num_negatives]
            keep_rows.append(i)
            negatives.append([texts[int(top_i[r, c])] for c in chosen])
            pos_scores.append(float(pos[r]))
            neg_scores.extend(float(top_s[r, c]) for c in chosen)
    if not keep_rows:
        raise DataError("hard-negative mining kept no row: loosen range_min / margin / max_score or add a corpus")
    given = rows.negatives
    out = PairRows([rows.anchors[i] for i in keep_rows], [rows.positives[i] for i in keep_rows],
                   [(given[i] if given else []) + negs for i, negs in zip(keep_rows, negatives, strict=True)],
                   None if rows.groups is None else [rows.groups[i] for i in keep_rows])
    stats = MiningStats(n, len(keep_rows), sum(pos_scores) / len(pos_scores), sum(neg_scores) / len(neg_scores))
    return out, stats


def write_rows(rows: PairRows, path: str | Path) -> Path:
    """Write rows as a table (``anchor, positive, negative_1..k``): .csv, .tsv, .jsonl or .parquet."""
    import pandas as pd

    path = Path(path)
    data = {"anchor": rows.anchors, "positive": rows.positives}
    for k in range(rows.num_negatives):
        data[f"negative_{k + 1}"] = [negs[k] for negs in rows.negatives]
    frame = pd.DataFrame(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.name.removesuffix(".gz")
    if name.endswith(".parquet"):
        frame.to_parquet(path, index=False)
    elif name.endswith(".jsonl"):
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif name.endswith((".csv", ".tsv")):
        frame.to_csv(path, sep="\t" if name.endswith(".tsv") else ",", index=False)
    else:
        raise DataError(f"{path}: write .csv, .tsv, .jsonl or .parquet")
    return path


def text_embedder(model: str, pooling: str = "mean", max_length: int = 128, batch_size: int = 128):
    """``embed(texts)`` of a Hugging Face text encoder (a folder, hub id or 'minilm')."""
    from multissl.encoders.hf import HFEncoder

    enc = HFEncoder(model, pooling=pooling, max_length=max_length)
    return lambda texts: enc.encode(texts, batch_size=batch_size)


def main(argv: list[str] | None = None) -> int:
    from multissl.finetune.data import load_pairs, read_table

    p = argparse.ArgumentParser(prog="multissl mine-negatives", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="table of pairs (.csv/.tsv/.jsonl/.parquet or hf:NAME[:SPLIT])")
    p.add_argument("--anchor-column", default="anchor")
    p.add_argument("--positive-column", default="positive")
    p.add_argument("--no-header", action="store_true", help="the table has no header row (columns 0, 1, ...)")
    p.add_argument("--score-column", help="keep rows scored at least --min-score in this column")
    p.add_argument("--min-score", type=float)
    p.add_argument("--limit", type=int, help="first N rows only")
    p.add_argument("--corpus", help="extra candidate texts: a table (with --corpus-column) added to the positives")
    p.add_argument("--corpus-column", default="text")
    p.add_argument("--model", default="minilm", help="HF text encoder: folder, hub id or 'minilm'")
    p.add_argument("--pooling", default="mean")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--num-negatives", type=int, default=3)
    p.add_argument("--range-min", type=int, default=0)
    p.add_argument("--range-max", type=int)
    p.add_argument("--max-score", type=float)
    p.add_argument("--margin", type=float)
    p.add_argument("--relative-margin", type=float)
    p.add_argument("--sampling", choices=("top", "random"), default="top")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output table (.csv/.tsv/.jsonl/.parquet)")
    args = p.parse_args(argv)
    rows = load_pairs(args.data, args.anchor_column, args.positive_column, header=not args.no_header,
                      score_column=args.score_column, min_score=args.min_score, limit=args.limit)
    corpus = None
    if args.corpus:
        frame = read_table(args.corpus)
        if args.corpus_column not in frame.columns:
            raise DataError(f"{args.corpus}: no column '{args.corpus_column}' (have {list(frame.columns)[:20]})")
        corpus = [str(t) for t in frame[args.corpus_column].tolist() if str(t).strip()]
    mined, stats = mine_hard_negatives(
        rows, text_embedder(args.model, args.pooling, args.max_length), corpus=corpus,
        num_negatives=args.num_negatives, range_min=args.range_min, range_max=args.range_max,
        max_score=args.max_score, margin=args.margin, relative_margin=args.relative_margin,
        sampling=args.sampling, seed=args.seed)
    write_rows(mined, args.out)
    print(json.dumps({"out": args.out, **stats.as_dict()}, indent=2))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
