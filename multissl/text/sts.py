"""STS scoring: Spearman x 100 between gold scores and the cosine similarity of the two sentences' embeddings
(the protocol of SimCSE / SentEval's 'all' setting and of sentence-transformers' EmbeddingSimilarityEvaluator)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from multissl.eval import spearman
from multissl.text.data import STSPairs


@torch.no_grad()
def encode_texts(embed: Callable[[dict[str, torch.Tensor]], torch.Tensor], tokenizer, texts: list[str],
                 max_length: int = 128, batch_size: int = 128, device: torch.device | str = "cpu") -> torch.Tensor:
    """Embed strings (N, D) in length-sorted batches (less padding), returned in input order on CPU."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out: list[torch.Tensor] = [None] * len(texts)  # type: ignore[list-item]
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")
        batch = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        emb = embed(batch).float().cpu()
        for j, i in enumerate(idx):
            out[i] = emb[j]
    return torch.stack(out) if out else torch.zeros(0)


def sts_spearman(embed: Callable[[dict[str, torch.Tensor]], torch.Tensor], tokenizer, pairs: STSPairs,
                 max_length: int = 128, batch_size: int = 128, device: torch.device | str = "cpu") -> float:
    """Spearman x 100 of cos(e(s1), e(s2)) against the gold scores; each unique sentence is encoded once."""
    unique = list(dict.fromkeys(pairs.s1 + pairs.s2))
    pos = {s: i for i, s in enumerate(unique)}
    emb = encode_texts(embed, tokenizer, unique, max_length, batch_size, device)
    a = emb[[pos[s] for s in pairs.s1]]
    b = emb[[pos[s] for s in pairs.s2]]
    cos = F.cosine_similarity(a, b, dim=-1)
    return 100.0 * spearman(cos, pairs.scores)
