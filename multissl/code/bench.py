"""``multissl bench code``: (1) wall time to evaluate the WHOLE test code base (encode queries and code,
rank, MRR / R@k) with our batched top-k evaluation vs sentence-transformers encoding + the official
full-argsort ranking loop (same model, same texts; the MRRs must agree); (2) training throughput in
(query, code) pairs/s of a CoCoSoDa step and of a fine-tuning step vs a bare PyTorch loop of the same
in-batch loss.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from multissl.bench.harness import Measurement, record
from multissl.code.data import load_retrieval
from multissl.code.evaluate import evaluate_retrieval


def official_style_mrr(q: np.ndarray, c: np.ndarray, relevant: list[int], cutoff: int = 1000) -> float:
    """The CodeSearchNet / CoCoSoDa evaluation: full argsort of every score row, rank within the top 1000."""
    scores = q @ c.T
    order = np.argsort(scores, axis=-1, kind="quicksort")[:, ::-1]
    ranks = []
    for rel, row in zip(relevant, order, strict=True):
        hit = np.nonzero(row[:cutoff] == rel)[0]
        ranks.append(1.0 / (hit[0] + 1) if hit.size else 0.0)
    return float(np.mean(ranks))


def bench_eval(args) -> list[Measurement]:
    from sentence_transformers import SentenceTransformer

    from multissl.encoders.hf import HFEncoder, resolve_model

    rset = load_retrieval(args.data, "test").slice_codebase(args.max_codebase)
    enc = HFEncoder("minilm", pooling="mean").eval()
    t0 = time.perf_counter()
    ours = evaluate_retrieval(enc.tokenizer, lambda b: enc(**b), rset, code_length=args.code_length,
                              query_length=args.query_length, batch_size=64)
    t_ours = time.perf_counter() - t0
    st = SentenceTransformer(resolve_model("minilm"), device="cpu")
    t0 = time.perf_counter()
    st.max_seq_length = args.query_length
    q = st.encode(rset.queries, batch_size=64, normalize_embeddings=True)
    st.max_seq_length = args.code_length
    c = st.encode(rset.codes, batch_size=64, normalize_embeddings=True)
    peer_mrr = official_style_mrr(q, c, rset.relevant)
    t_peer = time.perf_counter() - t0
    extra = {"queries": len(rset.queries), "codebase": len(rset.codes), "ours_mrr": ours["mrr"], "peer_mrr": peer_mrr,
             "code_length": args.code_length}
    return [Measurement("code", f"eval test codebase ({len(rset.codes)} codes) wall", t_ours, t_peer, "s",
                        "sentence-transformers encode + official argsort MRR", higher_is_better=False, extra=extra),
            Measurement("code", "MRR zero-shot MiniLM (ours vs official-style ranking)", ours["mrr"], peer_mrr, "MRR",
                        "official-style ranking", extra=extra)]


def _pairs_per_s(step, batch, steps: int) -> float:
    step(batch)  # warm-up
    t0 = time.perf_counter()
    for _ in range(steps):
        step(batch)
    return steps * batch["code_input_ids"].shape[0] / (time.perf_counter() - t0)


def bench_train(args) -> list[Measurement]:
    from multissl.code.data import load_pairs
    from multissl.code.methods import CoCoSoDa, CodeSearchFineTune
    from multissl.code.tasks import CodeSearchCollator
    from multissl.encoders.hf import HFEncoder

    pairs = load_pairs(args.data, "train")[: args.batch_size]
    out = []
    for name in ("cocosoda", "finetune"):
        torch.manual_seed(0)
        enc = HFEncoder("minilm", pooling="mean")
        method = CoCoSoDa(enc) if name == "cocosoda" else CodeSearchFineTune(enc)
        batch = CodeSearchCollator(enc.tokenizer, args.code_length, args.query_length, name == "cocosoda")(pairs)
        opt = torch.optim.AdamW([p for p in method.parameters() if p.requires_grad], lr=2e-5)

        def ours(b, method=method, opt=opt, momentum=name == "cocosoda"):
            loss = method(b).loss
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if momentum:
                method.after_step(None)

        rate = _pairs_per_s(ours, batch, args.steps)
        peer = None
        if name == "finetune":
            model = enc.model

            def bare(b, model=model, opt=opt):
                def emb(ids, mask):
                    h = model(input_ids=ids, attention_mask=mask).last_hidden_state
                    m = mask.unsqueeze(-1).float()
                    return F.normalize((h * m).sum(1) / m.sum(1), dim=-1)

                s = emb(b["query_input_ids"], b["query_attention_mask"]) @ emb(
                    b["code_input_ids"], b["code_attention_mask"]).t()
                F.cross_entropy(s * 20, torch.arange(s.shape[0])).backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

            peer = _pairs_per_s(bare, batch, args.steps)
        out.append(Measurement("code", f"{name} training pairs/s (batch {args.batch_size}, code {args.code_length})",
                               rate, peer, "pairs/s", "bare PyTorch loop" if peer else "",
                               extra={"threads": torch.get_num_threads()}))
    return out


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl bench code", description=__doc__.split("\n")[0])
    p.add_argument("--data", default="codesearch")
    p.add_argument("--max-codebase", type=int, default=None, help="cut the test code base (default: whole)")
    p.add_argument("--code-length", type=int, default=256)
    p.add_argument("--query-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--skip-train", action="store_true")
    p.add_argument("--skip-eval", action="store_true")
    a = p.parse_args(argv)
    rows = [] if a.skip_eval else bench_eval(a)
    rows += [] if a.skip_train else bench_train(a)
    record(rows)
    return 0
