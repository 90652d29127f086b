"""Unsupervised sentence-embedding methods on any Hugging Face encoder: SimCSE, ESimCSE, WhitenedCSE, MLM.

- unsup-SimCSE (Gao, Yao, Chen, EMNLP 2021): each sentence encoded twice with dropout as the positive
  pair, in-batch negatives, InfoNCE at temperature 0.05, an MLP (Linear + Tanh) over the pooled vector
  at train time only.
- ESimCSE (Wu et al., COLING 2022): the positive is the word-repeated sentence (see ``augment``); a
  momentum copy of the encoder (m = 0.995, updated before the optimizer step) encodes the original
  sentence with dropout off, through the online MLP, into a FIFO queue of past keys used as extra
  negatives: loss = CE over ``[z1 z2^T | z1 queue^T] / 0.05``.
- WhitenedCSE (Zhuo et al., ACL 2023): ``num_pos`` dropout views; the training head is shuffled group
  whitening -> Linear -> Tanh per view; loss = sum_k CE(z1, z_k), k = 2..num_pos.
- Masked language modelling (Devlin et al. 2019): BERT's 80/10/10 masking, for pre-training from
  scratch or domain-adaptive pre-training of any encoder with an MLM head.

Any of the contrastive methods can use a cached (GradCache) encoder pass: ``gradcache_chunk`` > 0 gives
the same loss and gradients with the activation memory of one chunk.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import nn

from multissl.core import (
    FeatureQueue,
    LossOutput,
    Method,
    ema_update,
    info_nce,
    momentum_copy,
)
from multissl.core.gradcache import cached_embeddings, split_batch
from multissl.core.whitening import ShuffledGroupWhitening
from multissl.encoders.hf import HFEncoder, pool
from multissl.encoders.masking import mask_tokens, special_tokens_mask

MlpMode = Literal["train", "always", "none"]
INPUT_KEYS = ("input_ids", "attention_mask", "token_type_ids")


def _inputs(batch: dict[str, torch.Tensor], prefix: str = "") -> dict[str, torch.Tensor]:
    return {k: batch[prefix + k] for k in INPUT_KEYS if prefix + k in batch}


class SentenceEmbedder(Method):
    """An :class:`HFEncoder` plus SimCSE's optional MLP; ``embed`` gives evaluation embeddings."""

    def __init__(self, encoder: HFEncoder, temperature: float = 0.05, mlp: MlpMode = "train",
                 gradcache_chunk: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        self.temperature, self.mlp_mode, self.gradcache_chunk = temperature, mlp, gradcache_chunk
        h = encoder.hidden_size
        self.mlp = nn.Sequential(nn.Linear(h, h), nn.Tanh()) if mlp != "none" else nn.Identity()

    def pooled(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled encoder output (B, H) for tokenised inputs."""
        return self.encoder(**inputs)

    def views(self, inputs: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        """Pooled vectors of several tokenised views; one encoder pass when their shapes agree."""
        if self.gradcache_chunk > 0 and torch.is_grad_enabled():
            return [cached_embeddings(self.pooled, split_batch(x, self.gradcache_chunk)) for x in inputs]
        shapes = {tuple(x["input_ids"].shape) for x in inputs}
        if len(shapes) == 1 and len(inputs) > 1:
            b = inputs[0]["input_ids"].shape[0]
            joint = {k: torch.cat([x[k] for x in inputs], 0) for k in inputs[0]}
            return list(self.pooled(joint).split(b, 0))
        return [self.pooled(x) for x in inputs]

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(z)

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        z = self.pooled(_inputs(batch))
        return self.mlp(z) if self.mlp_mode == "always" else z

    def hf_encoder(self) -> HFEncoder:
        """The encoder to export / evaluate (the train-only head is not part of it)."""
        return self.encoder


class SimCSE(SentenceEmbedder):
    """Unsupervised SimCSE (Gao, Yao, Chen, EMNLP 2021, "SimCSE: Simple Contrastive Learning of Sentence
    Embeddings"): each sentence encoded twice with dropout, the two views a positive pair, the other
    sentences of the batch negatives, cross-entropy over cosine / 0.05; an MLP (Linear + Tanh) over the
    pooled vector at train time only (``mlp='train'``, the reference's ``mlp_only_train``).

    Reference code: princeton-nlp/SimCSE (``simcse/models.py`` ``cl_forward``, ``train.py``).

    Deviations from the reference code:
    - the MLP follows ``mlp`` whatever the pooling; the reference adds it only for ``pooler_type=cls``
      (the MiniLM recipes pool by mean with ``method.mlp=none``, which matches it): one switch instead of
      a rule tied to the pooling.
    - across processes the loss takes the local rows against all gathered columns with gradients through
      every rank (open_clip's local loss), where the reference computes every row on every rank with
      gradients through its own slice only: both give the gradient of the global-batch loss.
    - ``gradcache_chunk > 0`` (off by default) computes the same loss and gradients in chunks; the
      reference has no such option.
    """

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        x = _inputs(batch)
        z1, z2 = self.views([x, x])
        loss = info_nce(self.head(z1), self.head(z2), temperature=self.temperature, gather=True)
        return LossOutput(loss)


class ESimCSE(SentenceEmbedder):
    """ESimCSE (Wu et al., COLING 2022): word-repetition positives + momentum-contrast queue negatives.

    Reference code: caskcsg/sentemb (``ESimCSE/esimcse/models.py``, ``trainers.py``). The momentum
    encoder's EMA runs after backward and before the optimizer step (``ema_timing = "before_step"``); keys
    are staged in ``forward`` and pushed once per optimizer step (gathered over processes).

    Deviations from the reference code:
    - The reference updates the momentum encoder inside the online forward; ``before_step`` uses the
      same online weights (those before this step's update) once per optimizer step, so it also holds
      under gradient accumulation.
    - Queue keys are gathered over processes before the push, so every process holds the same queue.
    """

    ema_timing = "before_step"

    def __init__(self, encoder: HFEncoder, temperature: float = 0.05, mlp: MlpMode = "train",
                 gradcache_chunk: int = 0, momentum: float = 0.995, queue_size: int = 160) -> None:
        super().__init__(encoder, temperature, mlp, gradcache_chunk)
        self.momentum = momentum
        self.momentum_model = momentum_copy(encoder.model)
        self.queue = FeatureQueue(queue_size, encoder.hidden_size)

    def train(self, mode: bool = True) -> ESimCSE:
        super().train(mode)
        self.momentum_model.eval()  # the momentum encoder always runs with dropout off
        return self

    @torch.no_grad()
    def momentum_keys(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Original sentences through the momentum encoder (dropout off) and the online MLP (B, H)."""
        self.momentum_model.eval()
        out = self.momentum_model(**inputs)
        z = pool(out.last_hidden_state, inputs["attention_mask"], self.encoder.pooling,
                 getattr(out, "pooler_output", None))
        return self.head(z)

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        x, rep = _inputs(batch), _inputs(batch, "rep_")
        z1, z2 = self.views([x, rep])
        z1, z2 = self.head(z1), self.head(z2)
        keys = self.momentum_keys(x)
        negatives = self.queue.keys() if len(self.queue) else None
        loss = info_nce(z1, z2, temperature=self.temperature, extra_keys=negatives, gather=True)
        self.queue.stage(keys)  # pushed once per optimizer step by the trainer
        return LossOutput(loss, {"queue_len": float(len(self.queue))})

    @torch.no_grad()
    def momentum_update(self, progress) -> None:
        ema_update(self.momentum_model, self.encoder.model, self.momentum)


class WhitenedCSE(SentenceEmbedder):
    """WhitenedCSE (Zhuo et al., ACL 2023, "WhitenedCSE: Whitening-based Contrastive Learning of Sentence
    Embeddings"): ``num_pos`` dropout views of each sentence; the train-time head is shuffled group
    whitening -> Linear -> Tanh; loss = sum over k = 2..num_pos of CE(cos(z1, z_k) / 0.05). Evaluation
    uses the pooled vector without the head.

    Reference code: SupstarZh/WhitenedCSE (``whitenedcse/models.py``, ``shuffled_group_whitening.py``).

    Deviations from the reference code:
    - each view is whitened on its own, as the paper describes; the reference splits the flattened
      (sample-major, views interleaved) batch into three contiguous thirds, so its groups mix views and
      samples in a way that depends on the batch layout.
    - gradients flow through the whitening matrix by default; the reference rebuilds the covariance as
      a new leaf tensor, so none does: ``method.detach_whitening=true`` matches it.
    - ``eps`` (1e-5) is added to the covariance eigenvalues for stability; the reference adds none.
    - ``num_pos`` is a setting (the reference hard-codes three views in the whitening layer).
    """

    def __init__(self, encoder: HFEncoder, temperature: float = 0.05, gradcache_chunk: int = 0, num_pos: int = 3,
                 num_groups: int = 128, shuffle: bool = True, eps: float = 1e-5,
                 detach_whitening: bool = False) -> None:
        super().__init__(encoder, temperature, "train", gradcache_chunk)
        if num_pos < 2:
            raise ValueError("WhitenedCSE needs num_pos >= 2")
        self.num_pos = num_pos
        self.whitening = ShuffledGroupWhitening(encoder.hidden_size, num_groups, shuffle, eps, detach_whitening)

    def head(self, z: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.whitening(z))  # whitening -> Linear -> Tanh (each view whitened on its own)

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        x = _inputs(batch)
        zs = [self.head(z) for z in self.views([x] * self.num_pos)]
        losses = [info_nce(zs[0], z, temperature=self.temperature, gather=True) for z in zs[1:]]
        return LossOutput(sum(losses), {f"loss_pos{k + 2}": float(v.detach()) for k, v in enumerate(losses)})


class MaskedLM(Method):
    """Masked language modelling (Devlin et al., NAACL 2019, "BERT") on any ``AutoModelForMaskedLM``:
    15% of the non-special tokens chosen, 80% of them replaced by [MASK], 10% by a random token, 10% kept.

    Reference code: google-research/bert (``create_pretraining_data.py``, ``run_pretraining.py``) as
    transformers' ``DataCollatorForLanguageModeling`` re-implements it.

    Deviations from the reference code:
    - masking is dynamic (drawn per batch, as RoBERTa and the transformers collator), not fixed once
      when the data are written; no next-sentence prediction (RoBERTa showed it does not help).
    - the vocabulary logits are computed at the masked positions only (same loss, a fraction of the cost).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, rate: float = 0.15, pooling: str = "mean",
                 max_length: int = 128, base_name: str = "") -> None:
        super().__init__()
        self.model, self.rate, self.base_name = model, rate, base_name
        self.tokenizer, self.pooling, self.max_length = tokenizer, pooling, max_length
        self.special_ids = sorted(set(tokenizer.all_special_ids))

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        ids, mask = batch["input_ids"], batch["attention_mask"]
        special = special_tokens_mask(ids, self.special_ids) | (mask == 0)
        masked, labels = mask_tokens(ids, self.tokenizer.mask_token_id, len(self.tokenizer), special, self.rate)
        head = self._head()
        if head is None:  # an architecture whose head we do not know: the model's own full-sequence loss
            return LossOutput(self.model(input_ids=masked, attention_mask=mask, labels=labels).loss)
        # vocabulary logits only at the ~15% masked positions (the full (B, L, V) logits dominate the cost)
        hidden = self.base()(input_ids=masked, attention_mask=mask).last_hidden_state  # (B, L, H)
        chosen = labels != -100
        logits = head(hidden[chosen])  # (M, V)
        loss = nn.functional.cross_entropy(logits.float(), labels[chosen]) if chosen.any() else hidden.sum() * 0.0
        return LossOutput(loss)

    def _head(self) -> nn.Module | None:
        for name in ("cls", "lm_head"):  # BERT-style / RoBERTa-style MLM heads
            head = getattr(self.model, name, None)
            if isinstance(head, nn.Module):
                return head
        return None

    def base(self) -> nn.Module:
        return self.model.base_model

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        out = self.base()(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        return pool(out.last_hidden_state, batch["attention_mask"], self.pooling)

    def hf_encoder(self) -> HFEncoder:
        """The backbone (no MLM head) as an encoder to evaluate / export; built on the fly (not a submodule)."""
        return HFEncoder(self.base_name, pooling=self.pooling, max_length=self.max_length, model=self.base(),
                         tokenizer=self.tokenizer)
