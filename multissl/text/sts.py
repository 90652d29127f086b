"""STS scoring: Spearman x 100 between gold scores and the cosine similarity of the two sentences' embeddings
(the protocol of SimCSE / SentEval's 'all' setting and of sentence-transformers' EmbeddingSimilarityEvaluator)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from multissl.eval import spearman
from multissl.eval.bootstrap import Interval, bootstrap_statistic
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


class SentenceBank:
    """Embeddings of every distinct sentence of several STS sets, computed once (encode once, score many:
    a sentence shared by a subset, its year's "all" and another set is embedded a single time)."""

    def __init__(self, embed: Callable[[dict[str, torch.Tensor]], torch.Tensor], tokenizer, sets: list[STSPairs],
                 max_length: int = 128, batch_size: int = 128, device: torch.device | str = "cpu") -> None:
        unique = list(dict.fromkeys(s for p in sets for s in p.s1 + p.s2))
        self.index = {s: i for i, s in enumerate(unique)}
        self.encoded = len(unique)
        self.emb = encode_texts(embed, tokenizer, unique, max_length, batch_size, device)

    def cosines(self, pairs: STSPairs) -> torch.Tensor:
        """(N,) cosine similarity of each pair's two sentences."""
        a = self.emb[[self.index[s] for s in pairs.s1]]
        b = self.emb[[self.index[s] for s in pairs.s2]]
        return F.cosine_similarity(a, b, dim=-1)


def spearman_with_interval(cos: torch.Tensor, gold: torch.Tensor, n_boot: int = 1000, seed: int = 0) -> Interval:
    """Spearman x 100 of ``cos`` vs ``gold`` with a percentile-bootstrap 95% interval over pairs."""
    x, y = cos.double().numpy(), gold.double().numpy()
    if n_boot <= 0:
        v = 100.0 * spearman(x, y)
        return Interval(v, float("nan"), float("nan"), n_boot=0)
    return bootstrap_statistic(lambda i: 100.0 * spearman(x[i], y[i]), len(x), n_boot, seed)


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
