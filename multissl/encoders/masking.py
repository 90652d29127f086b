"""BERT-style dynamic token masking shared by MLM pre-training (text), CoCoSoDa's soft data
augmentation (code) and ALBEF's masked language modelling (vision-language).

Devlin et al. 2019: choose ``rate`` of the maskable tokens; of those 80% become [MASK], 10% a random
token, 10% stay. Special tokens and padding are never chosen.
"""

from __future__ import annotations

import torch


def special_tokens_mask(input_ids: torch.Tensor, special_ids: list[int] | set[int] | torch.Tensor) -> torch.Tensor:
    """(B, L) bool: True where the token is special ([CLS], [SEP], [PAD], ...)."""
    special = torch.as_tensor(sorted(set(int(i) for i in special_ids)), device=input_ids.device)
    return torch.isin(input_ids, special)


def mask_tokens(
    input_ids: torch.Tensor, mask_token_id: int, vocab_size: int, special_mask: torch.Tensor,
    rate: float = 0.15, mask_fraction: float = 0.8, random_fraction: float = 0.1,
    generator: torch.Generator | None = None, ignore_index: int = -100,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (masked input ids, labels); labels hold the original id at chosen positions, else ``ignore_index``.

    ``special_mask`` (B, L) marks positions never to touch (special tokens, padding).
    """
    device = input_ids.device
    probs = torch.full(input_ids.shape, rate, device=device)
    probs.masked_fill_(special_mask, 0.0)
    chosen = torch.bernoulli(probs, generator=generator).bool()
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, ignore_index))
    out = input_ids.clone()
    r = torch.rand(input_ids.shape, device=device, generator=generator)
    to_mask = chosen & (r < mask_fraction)
    to_random = chosen & (r >= mask_fraction) & (r < mask_fraction + random_fraction)
    out[to_mask] = mask_token_id
    random_ids = torch.randint(vocab_size, input_ids.shape, device=device, generator=generator)
    out[to_random] = random_ids[to_random]
    return out, labels
