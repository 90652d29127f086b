"""Tokenising collate functions and ESimCSE's word repetition.

Word repetition follows ESimCSE (Wu, Wang, Zhao, Xie, Dong, COLING 2022) and its official code's
subword ("bpe") mode: on the token ids after truncation, with L the sequence length including the
special tokens, draw ``add_len = randrange(min(max_dup, int(dup_rate * L)))`` distinct positions among
the non-special tokens (1 .. L-2) and emit each chosen token twice; sentences with
``int(dup_rate * L) == 0`` stay unchanged.
"""

from __future__ import annotations

import random
from typing import Any

import torch


def word_repetition(ids: list[int], dup_rate: float = 0.32, max_dup: int = 10,
                    rng: random.Random | None = None) -> list[int]:
    """One sentence's token ids (with [CLS] ... [SEP]) with some non-special tokens duplicated."""
    rng = rng or random
    length = len(ids)
    upper = min(max_dup, int(dup_rate * length))
    if upper <= 0 or length < 3:
        return list(ids)
    add_len = rng.randrange(upper)
    chosen = set(rng.sample(range(1, length - 1), min(add_len, length - 2)))
    out: list[int] = []
    for i, tok in enumerate(ids):
        if i in chosen:
            out.append(tok)
        out.append(tok)
    return out


def pad_ids(seqs: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad id lists into input_ids / attention_mask (B, L)."""
    longest = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), longest), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, : len(s)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class TokenizeCollate:
    """Strings -> {'input_ids', 'attention_mask'} (B, L), truncated to ``max_length`` (SimCSE, WhitenedCSE)."""

    def __init__(self, tokenizer: Any, max_length: int = 32) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length

    def ids(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(list(texts), truncation=True, max_length=self.max_length)["input_ids"]

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return pad_ids(self.ids(texts), self.tokenizer.pad_token_id or 0)


class RepetitionCollate(TokenizeCollate):
    """Strings -> the original ids plus their word-repeated positives under ``rep_`` keys (ESimCSE)."""

    def __init__(self, tokenizer: Any, max_length: int = 32, dup_rate: float = 0.32, max_dup: int = 10,
                 seed: int | None = None) -> None:
        super().__init__(tokenizer, max_length)
        self.dup_rate, self.max_dup = dup_rate, max_dup
        self.rng = random.Random(seed) if seed is not None else random  # global: seeded + checkpointed by the trainer

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        ids = self.ids(texts)
        pad = self.tokenizer.pad_token_id or 0
        rep = [word_repetition(s, self.dup_rate, self.max_dup, self.rng) for s in ids]
        out = pad_ids(ids, pad)
        out.update({f"rep_{k}": v for k, v in pad_ids(rep, pad).items()})
        return out
