"""Code-search evaluation: MRR (rank > 1000 counts 0, as the official CodeSearchNet / CoCoSoDa script)
and R@1/5/10 of ranking the WHOLE code base for every query, by batched matrix products and torch.topk.

``multissl eval code --data PATH [--model minilm | FOLDER | hub id]`` evaluates any layout that
:mod:`multissl.code.data` reads (our mined set, CodeSearchNet jsonl, CodeXGLUE test + codebase,
AdvTest, CoSQA, ``hf:code_search_net:python``).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from multissl.code.data import RetrievalSet, load_retrieval
from multissl.eval import retrieval_metrics

Embedder = Callable[[dict[str, torch.Tensor]], torch.Tensor]


@torch.no_grad()
def encode_texts(tokenizer, embed: Embedder, texts: list[str], max_length: int, batch_size: int = 64,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Embed strings in length-sorted batches (less padding), returned in the input order (N, D), L2-normalised."""
    if not texts:
        return torch.zeros(0, 1)
    lengths = [len(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: -lengths[i])
    chunks = []
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        batch = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
        if device is not None:
            batch = {k: v.to(device) for k, v in batch.items()}
        chunks.append(F.normalize(embed(batch).float(), dim=-1).cpu())
    out = torch.cat(chunks)
    result = torch.empty_like(out)
    result[torch.tensor(order)] = out
    return result


def evaluate_retrieval(tokenizer, embed: Embedder, rset: RetrievalSet, *, code_length: int = 256,
                       query_length: int = 128, batch_size: int = 64, ks=(1, 5, 10), mrr_cutoff: int | None = 1000,
                       prefix: str = "", device=None) -> dict[str, float]:
    """MRR / R@k of ``rset`` with ``embed`` (a method's ``embed``), plus timings and sizes."""
    t0 = time.perf_counter()
    q = encode_texts(tokenizer, embed, rset.queries, query_length, batch_size, device)
    t1 = time.perf_counter()
    c = encode_texts(tokenizer, embed, rset.codes, code_length, batch_size, device)
    t2 = time.perf_counter()
    m = retrieval_metrics(q, c, torch.tensor(rset.relevant), ks=ks, mrr_cutoff=mrr_cutoff, prefix=prefix)
    t3 = time.perf_counter()
    out = {f"{prefix}mrr": m[f"{prefix}mrr"]}
    out.update({f"{prefix}r@{k}": m[f"{prefix}r@{k}"] for k in ks})
    out.update({f"{prefix}queries": float(len(rset.queries)), f"{prefix}codebase": float(len(rset.codes)),
                f"{prefix}encode_queries_s": t1 - t0, f"{prefix}encode_codes_s": t2 - t1,
                f"{prefix}rank_s": t3 - t2})
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl eval code", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder / query file / hf:code_search_net[:language]; "
                   "shipped: codesearch (data/codesearch)")
    p.add_argument("--split", default="test", help="split file to read in a folder (test, valid, ...)")
    p.add_argument("--codebase", default=None, help="separate code-base file (codebase.jsonl, code_idx_map.txt)")
    p.add_argument("--model", default="minilm", help="'minilm', a saved folder (a run's export/), or a hub id")
    p.add_argument("--pooling", default=None, help="mean (default) / cls / ...; read from the folder when saved")
    p.add_argument("--code-length", type=int, default=256)
    p.add_argument("--query-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-queries", type=int, default=None, help="evaluate only the first N queries (whole code base)")
    p.add_argument("--max-codebase", type=int, default=None, help="cut the code base to its first N codes")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    from multissl.encoders.hf import HFEncoder

    rset = load_retrieval(a.data, a.split, a.codebase).slice_codebase(a.max_codebase).head(a.max_queries)
    from pathlib import Path

    kwargs = {"pooling": a.pooling} if a.pooling else {}
    folder = Path(a.model)
    encoder = HFEncoder.from_folder(folder, **kwargs) if (folder / "multissl_encoder.json").exists() else \
        HFEncoder(a.model, **({"pooling": "mean"} | kwargs))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    encoder.to(device).eval()
    t0 = time.perf_counter()
    res = evaluate_retrieval(encoder.tokenizer, lambda b: encoder(**b), rset, code_length=a.code_length,
                             query_length=a.query_length, batch_size=a.batch_size, device=device)
    res["wall_s"] = time.perf_counter() - t0
    from multissl.eval.guards import require_finite

    require_finite(res, f"code retrieval of {a.model}")
    if a.json:
        print(json.dumps(res))
    else:
        print(f"{rset.name}: {len(rset.queries)} queries, code base of {len(rset.codes)}, model {a.model}")
        for k in ("mrr", "r@1", "r@5", "r@10"):
            print(f"  {k:5s} {res[k]:.4f}")
        print(f"  wall  {res['wall_s']:.1f} s (queries {res['encode_queries_s']:.1f} s, codes "
              f"{res['encode_codes_s']:.1f} s, ranking {res['rank_s']:.2f} s)")
    return 0
