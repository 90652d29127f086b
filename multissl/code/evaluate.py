"""Code-search evaluation: MRR and R@1/5/10 of ranking the WHOLE code base for every query (batched matrix
products), with a BM25 lexical floor on the same ranking and bootstrap 95% intervals over queries.

``multissl eval code --data PATH [--model minilm | FOLDER | RUN [SECOND]]`` evaluates any layout that
:mod:`multissl.code.data` reads (our mined set, CodeSearchNet jsonl, CodeXGLUE test + codebase,
AdvTest, CoSQA, ``hf:code_search_net:python``). The MRR cut-off defaults to the layout's protocol
(CodeSearchNet / CodeXGLUE: ranks > 1000 count 0; CoSQA: none) and is printed. Ranking against anything
but the full code base needs ``--candidates gold-only`` and is flagged in the output. With two models
the paired difference of their MRR (same queries, same candidates) gets a bootstrap interval.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from multissl.code.data import PROTOCOL_MRR_CUTOFF, RetrievalSet, load_retrieval
from multissl.eval import retrieval_metrics
from multissl.eval.ranks import (
    first_hit_ranks,
    first_hit_ranks_from_scores,
    reciprocal_ranks,
)

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


def bm25_ranks(rset: RetrievalSet) -> torch.Tensor:
    """Per-query rank of the gold code under BM25 over identifier-split tokens (the lexical floor)."""
    from multissl.code.lexical import identifier_tokens
    from multissl.eval.bm25 import BM25

    index = BM25([identifier_tokens(c) for c in rset.codes])
    qtok = [identifier_tokens(q) for q in rset.queries]
    return first_hit_ranks_from_scores(lambda a, b: index.scores(qtok[a:b]), len(qtok), torch.tensor(rset.relevant),
                                       batch_size=256)


class ModelRanker:
    """One model to evaluate, with a cache of code-base embeddings (several splits sharing a code base,
    as CoSQA's dev and test do, encode it once)."""

    def __init__(self, ref: str, pooling: str | None, code_length: int, query_length: int, batch_size: int,
                 device: str) -> None:
        from pathlib import Path

        from multissl.encoders.hf import HFEncoder
        from multissl.eval.modelref import exported_model

        self.ref = ref
        folder = Path(exported_model(ref))
        kwargs = {"pooling": pooling} if pooling else {}
        self.encoder = HFEncoder.from_folder(folder, **kwargs) if (folder / "multissl_encoder.json").exists() else \
            HFEncoder(str(folder), **({"pooling": "mean"} | kwargs))
        self.encoder.to(device).eval()
        self.code_length, self.query_length, self.batch_size, self.device = code_length, query_length, batch_size, device
        self.cache: dict[str, torch.Tensor] = {}
        self.timings = {"encode_queries_s": 0.0, "encode_codes_s": 0.0}

    def _encode(self, texts: list[str], length: int) -> torch.Tensor:
        return encode_texts(self.encoder.tokenizer, lambda b: self.encoder(**b), texts, length, self.batch_size,
                            self.device)

    def ranks(self, rset: RetrievalSet) -> torch.Tensor:
        key = hashlib.sha1("\x00".join(rset.codes).encode()).hexdigest()
        t0 = time.perf_counter()
        if key not in self.cache:
            self.cache[key] = self._encode(rset.codes, self.code_length)
        t1 = time.perf_counter()
        q = self._encode(rset.queries, self.query_length)
        t2 = time.perf_counter()
        self.timings["encode_codes_s"] += t1 - t0
        self.timings["encode_queries_s"] += t2 - t1
        return first_hit_ranks(q, self.cache[key], torch.tensor(rset.relevant))


def _cutoff(arg: str, protocol: str) -> int | None:
    if arg == "auto":
        return PROTOCOL_MRR_CUTOFF.get(protocol, 1000)
    if arg == "none":
        return None
    return int(arg)


def summarise(ranks: torch.Tensor, cutoff: int | None, n_boot: int, seed: int) -> dict[str, float]:
    """MRR and R@1/5/10 with bootstrap 95% intervals over queries."""
    from multissl.eval.bootstrap import bootstrap_mean

    out: dict[str, float] = {}
    per = {"mrr": reciprocal_ranks(ranks, cutoff)}
    per.update({f"r@{k}": (ranks <= k).double() for k in (1, 5, 10)})
    for name, values in per.items():
        out[name] = float(values.mean())
        if n_boot > 0:
            iv = bootstrap_mean(values, n_boot, seed)
            out[f"{name}_low"], out[f"{name}_high"] = iv.low, iv.high
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl eval code", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="folder / query file / hf:code_search_net[:language]; "
                   "shipped: codesearch (data/codesearch)")
    p.add_argument("--split", default=["test"], nargs="+", help="split file(s) to read in a folder (test, valid, ...)")
    p.add_argument("--codebase", default=None, help="separate code-base file (codebase.jsonl, code_idx_map.txt); "
                   "found beside the query file when omitted")
    p.add_argument("--candidates", choices=["full", "gold-only"], default="full",
                   help="rank against the full code base (default) or only the queries' own gold codes (flagged)")
    p.add_argument("--model", default=["minilm"], nargs="+",
                   help="one or two models: 'minilm', an exported folder, a run folder, or a hub id")
    p.add_argument("--pooling", default=None, help="mean (default) / cls / ...; read from the folder when saved")
    p.add_argument("--mrr-cutoff", default="auto",
                   help="ranks beyond this count 0: 'auto' (the layout's protocol: 1000 CodeSearchNet/CodeXGLUE, "
                        "none CoSQA), 'none', or a number")
    p.add_argument("--no-bm25", action="store_true", help="skip the BM25 lexical baseline")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for 95%% intervals (0 = off)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap resamples")
    p.add_argument("--per-query", default=None, help="write one JSON line per query (split, query, gold, ranks)")
    p.add_argument("--code-length", type=int, default=256)
    p.add_argument("--query-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-queries", type=int, default=None, help="evaluate only the first N queries (whole code base)")
    p.add_argument("--max-codebase", type=int, default=None, help="cut the code base to its first N codes (flagged)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    a = p.parse_args(argv)
    from multissl.errors import MultisslError

    if len(a.model) > 2:
        raise MultisslError("--model takes one model, or two for a paired comparison")
    if a.threads:
        torch.set_num_threads(a.threads)
    from multissl.eval.bootstrap import bootstrap_paired

    device = "cuda" if torch.cuda.is_available() else "cpu"
    t_start = time.perf_counter()
    rankers = [ModelRanker(m, a.pooling, a.code_length, a.query_length, a.batch_size, device) for m in a.model]
    report: dict = {"models": a.model, "splits": {}}
    per_query = open(a.per_query, "w", encoding="utf-8") if a.per_query else None  # noqa: SIM115
    try:
        for split in a.split:
            rset = load_retrieval(a.data, split, a.codebase, a.candidates)
            rset = rset.slice_codebase(a.max_codebase).head(a.max_queries)
            cutoff = _cutoff(a.mrr_cutoff, rset.protocol)
            flagged = a.candidates != "full" or a.max_codebase is not None
            if flagged:
                print(f"multissl: warning: {split}: ranking against {rset.candidates}; figures are not comparable "
                      "to full-code-base results", file=sys.stderr)
            entry: dict = {"file": rset.name, "protocol": rset.protocol, "candidates": rset.candidates,
                           "full_codebase": not flagged, "queries": len(rset.queries), "codebase": len(rset.codes),
                           "mrr_cutoff": cutoff, "results": {}}
            ranks = {r.ref: r.ranks(rset) for r in rankers}
            if not a.no_bm25:
                ranks["bm25"] = bm25_ranks(rset)
            for name, rk in ranks.items():
                entry["results"][name] = summarise(rk, cutoff, a.bootstrap, a.seed)
            if len(rankers) == 2 and a.bootstrap > 0:
                first, second = (ranks[r.ref] for r in rankers)
                iv = bootstrap_paired(reciprocal_ranks(first, cutoff), reciprocal_ranks(second, cutoff), a.bootstrap,
                                      a.seed)
                entry["paired_mrr_difference"] = {"first_minus_second": iv.value, "low": iv.low, "high": iv.high,
                                                  "excludes_zero": iv.excludes_zero()}
            if per_query is not None:
                for i, q in enumerate(rset.queries):
                    rec = {"split": split, "query_index": i, "query": q, "gold": rset.relevant[i],
                           "ranks": {name: float(rk[i]) for name, rk in ranks.items()}}
                    per_query.write(json.dumps(rec) + "\n")
            report["splits"][split] = entry
    finally:
        if per_query is not None:
            per_query.close()
    report["timings"] = {r.ref: r.timings for r in rankers}
    report["wall_s"] = time.perf_counter() - t_start
    if a.json:
        print(json.dumps(report))
        return 0
    ci = a.bootstrap > 0
    for split, e in report["splits"].items():
        cut = "none" if e["mrr_cutoff"] is None else e["mrr_cutoff"]
        print(f"{e['file']} [{split}]: {e['queries']} queries against {e['candidates']}; "
              f"{e['protocol']} protocol, MRR cut-off {cut}" + (", 95% bootstrap intervals over queries" if ci else ""))
        for name, m in e["results"].items():
            cells = []
            for k in ("mrr", "r@1", "r@5", "r@10"):
                band = f" [{m[k + '_low']:.3f}, {m[k + '_high']:.3f}]" if ci else ""
                cells.append(f"{k} {m[k]:.4f}{band}")
            print(f"  {name:<24} " + "  ".join(cells))
        if "paired_mrr_difference" in e:
            d = e["paired_mrr_difference"]
            print(f"  MRR {a.model[0]} - {a.model[1]}: {d['first_minus_second']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]")
    print(f"  wall {report['wall_s']:.1f} s")
    return 0
