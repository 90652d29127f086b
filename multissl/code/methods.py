"""Code-search methods: CoCoSoDa (Shi et al., ICSE 2023) and the in-batch fine-tuning stage it is
followed by (the UniXcoder / GraphCodeBERT code-search fine-tuning, Guo et al. 2022).

Both share one encoder for code and query (mean pooling over non-pad tokens, L2-normalised) and
embed with the online encoder. A batch is a dict of tensors made by :class:`CodeSearchCollator`:
``code_input_ids``, ``code_attention_mask``, ``code_token_types`` (lexical type per subword, -1 for
special / pad) and ``query_input_ids``, ``query_attention_mask``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from multissl.code.augment import AUGMENTATIONS, TYPE_TOKENS, soft_augment
from multissl.core import (
    FeatureQueue,
    LossOutput,
    Method,
    Progress,
    ema_update,
    info_nce,
    momentum_copy,
)
from multissl.encoders.hf import HFEncoder, pool

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "LayerNorm.bias")


def add_type_tokens(encoder: HFEncoder) -> torch.Tensor:
    """Add the lexical-type tokens (``<keyword>``, ``<identifier>``, ...) to the tokenizer and the
    embedding matrix (resized; new rows start at the mean embedding) and return their ids."""
    tok = encoder.tokenizer
    missing = [t for t in TYPE_TOKENS if t not in tok.get_vocab()]
    if missing:
        tok.add_tokens(missing)
        emb = encoder.model.get_input_embeddings()
        old = emb.weight.shape[0]
        if len(tok) > old:
            mean = emb.weight.detach().mean(0)
            try:  # our own mean init below; skip transformers' covariance-based one (>= 4.46)
                encoder.model.resize_token_embeddings(len(tok), mean_resizing=False)
            except TypeError:
                encoder.model.resize_token_embeddings(len(tok))
            with torch.no_grad():
                encoder.model.get_input_embeddings().weight[old:] = mean
    return torch.tensor(tok.convert_tokens_to_ids(list(TYPE_TOKENS)), dtype=torch.long)


class _DualEncoderMethod(Method):
    """One encoder for code and query; ``embed`` takes ``input_ids`` / ``attention_mask``."""

    encoder: HFEncoder

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.encoder(input_ids=input_ids, attention_mask=attention_mask), dim=-1)

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.encode(batch["input_ids"], batch["attention_mask"])

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups of the official scripts: no decay on biases and LayerNorm weights."""
        decay, no_decay = [], []
        for name, p in self.named_parameters():
            if p.requires_grad:
                (no_decay if any(n in name for n in NO_DECAY) else decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


class CoCoSoDa(_DualEncoderMethod):
    """CoCoSoDa: momentum contrastive learning of code and query with soft data augmentation.

    Online encoder f (shared by code and query) and its momentum copy f_k (m = 0.999; the official
    code keeps two copies for code and query that are always equal, one is enough). Keys f_k(aug code)
    and f_k(aug query) come from the augmented inputs. Four queues (code, query, augmented code,
    augmented query; size 1024) hold past f(code), f(query), f_k(aug code), f_k(aug query).
    Inter-modal losses (each in-batch block + its queue as negatives, labels on the diagonal):
    code->query, code->aug query, query->code, query->aug code; intra-modal code->aug code and
    query->aug query when ``intra_modal`` (off in the official pre-training script). The loss is the
    mean cross-entropy over all rows, as the official concatenation of the logits.

    Scale: with ``paper_compat_scale`` the logits are cos / temperature * compat_multiplier (the
    official code divides by moco_t = 0.07 in the model and multiplies by 20 in the loss: scale ~286);
    otherwise cos / temperature.

    Reference code: DeepSoftwareAnalytics/CoCoSoDa (``model.py``, ``run.py``).

    Deviations from the reference code:
    - One momentum encoder instead of the reference's two always-equal copies (same keys, half the memory).
    - The key EMA runs after the optimizer step (``ema_timing = "after_step"``) instead of at the start
      of the next forward: every forward meets the same key encoder, one update per optimizer step.
    - Queue keys are staged per micro-batch and pushed once per optimizer step, gathered over
      processes (the reference enqueues each batch's keys inside its forward).
    """

    ema_timing = "after_step"

    def __init__(self, encoder: HFEncoder, *, queue_size: int = 1024, momentum: float = 0.999,
                 temperature: float = 0.07, paper_compat_scale: bool = True, compat_multiplier: float = 20.0,
                 mask_rate: float = 0.1, augmentations: tuple[str, ...] = AUGMENTATIONS,
                 aug_schedule: str = "random", intra_modal: bool = False) -> None:
        super().__init__()
        bad = [a for a in augmentations if a not in AUGMENTATIONS]
        if bad or not augmentations:
            raise ValueError(f"augmentations must be a non-empty subset of {AUGMENTATIONS}, got {augmentations}")
        if aug_schedule not in ("random", "cycle"):
            raise ValueError(f"aug_schedule must be 'random' or 'cycle', got {aug_schedule!r}")
        self.encoder = encoder
        self.register_buffer("type_token_ids", add_type_tokens(encoder), persistent=False)
        self.key_model = momentum_copy(encoder.model)
        dim = encoder.hidden_size
        # code, query, augmented code, augmented query keys (official: randn, L2-normalised, full)
        self.code_queue = FeatureQueue(queue_size, dim, init="random")
        self.query_queue = FeatureQueue(queue_size, dim, init="random")
        self.aug_code_queue = FeatureQueue(queue_size, dim, init="random")
        self.aug_query_queue = FeatureQueue(queue_size, dim, init="random")
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.momentum, self.temperature = momentum, temperature
        self.paper_compat_scale, self.compat_multiplier = paper_compat_scale, compat_multiplier
        self.mask_rate, self.augmentations, self.aug_schedule = mask_rate, tuple(augmentations), aug_schedule
        self.intra_modal = intra_modal
        tok = encoder.tokenizer
        self.mask_token_id = int(tok.mask_token_id if tok.mask_token_id is not None else tok.unk_token_id)
        self.vocab_size = len(tok)

    @property
    def effective_temperature(self) -> float:
        """The temperature actually applied: cos / effective_temperature are the logits."""
        return self.temperature / self.compat_multiplier if self.paper_compat_scale else self.temperature

    def pick_augmentation(self) -> str:
        if self.aug_schedule == "cycle":
            return self.augmentations[int(self.steps) % len(self.augmentations)]
        return self.augmentations[int(torch.randint(len(self.augmentations), (1,)))]

    def key_encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        out = self.key_model(input_ids=input_ids, attention_mask=attention_mask)
        return F.normalize(pool(out.last_hidden_state, attention_mask, self.encoder.pooling), dim=-1)

    def augment(self, batch: dict[str, torch.Tensor], kind: str) -> tuple[torch.Tensor, torch.Tensor]:
        code_ids, query_ids = batch["code_input_ids"], batch["query_input_ids"]
        code_special = batch["code_special_mask"] if "code_special_mask" in batch else batch["code_attention_mask"] == 0
        query_special = batch["query_special_mask"] if "query_special_mask" in batch else batch["query_attention_mask"] == 0
        return soft_augment(kind, code_ids, batch["code_token_types"], code_special, query_ids, query_special,
                            mask_token_id=self.mask_token_id, vocab_size=self.vocab_size,
                            type_token_ids=self.type_token_ids, rate=self.mask_rate)

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        kind = self.pick_augmentation()
        aug_code, aug_query = self.augment(batch, kind)
        code_q = self.encode(batch["code_input_ids"], batch["code_attention_mask"])  # (B, H)
        query_q = self.encode(batch["query_input_ids"], batch["query_attention_mask"])  # (B, H)
        with torch.no_grad():
            code_k = self.key_encode(aug_code, batch["code_attention_mask"])
            query_k = self.key_encode(aug_query, batch["query_attention_mask"])
        t = self.effective_temperature
        terms = {
            "code2query": info_nce(code_q, query_q, temperature=t, extra_keys=self.query_queue.keys()),
            "code2aug_query": info_nce(code_q, query_k, temperature=t, extra_keys=self.aug_query_queue.keys()),
            "query2code": info_nce(query_q, code_q, temperature=t, extra_keys=self.code_queue.keys()),
            "query2aug_code": info_nce(query_q, code_k, temperature=t, extra_keys=self.aug_code_queue.keys()),
        }
        if self.intra_modal:
            terms["code2aug_code"] = info_nce(code_q, code_k, temperature=t, extra_keys=self.aug_code_queue.keys())
            terms["query2aug_query"] = info_nce(query_q, query_k, temperature=t, extra_keys=self.aug_query_queue.keys())
        loss = torch.stack(list(terms.values())).mean()
        # staged per micro-batch; the trainer pushes them once per optimizer step (gathered)
        self.code_queue.stage(code_q)
        self.query_queue.stage(query_q)
        self.aug_code_queue.stage(code_k)
        self.aug_query_queue.stage(query_k)
        logs = {f"loss_{k}": v.detach() for k, v in terms.items()}
        logs["aug"] = float(self.augmentations.index(kind) if kind in self.augmentations else -1)
        return LossOutput(loss, logs)

    @torch.no_grad()
    def momentum_update(self, progress: Progress) -> None:
        ema_update(self.key_model, self.encoder.model, self.momentum)

    def after_step(self, progress: Progress) -> None:
        self.steps += 1  # drives the "cycle" augmentation schedule (one augmentation per optimizer step)


class CodeSearchFineTune(_DualEncoderMethod):
    """The fine-tuning stage: in-batch InfoNCE query -> code (the official ``scores * 20``, i.e.
    temperature 0.05), the other codes of the batch as negatives (UniXcoder, Guo et al., ACL 2022; the
    stage CoCoSoDa is followed by). Mean pooling over non-pad tokens, L2-normalised, one shared encoder.

    Reference code: microsoft/CodeBERT (``UniXcoder/downstream-tasks/code-search/run.py``, ``model.py``).

    Deviations from the reference code:
    - ``symmetric=True`` (off by default) adds the code -> query direction; the reference has query ->
      code only.
    - across processes the negatives are the gathered global batch (the reference trains one process
      with DataParallel, whose batch is already global): the same loss.
    """

    def __init__(self, encoder: HFEncoder, temperature: float = 0.05, symmetric: bool = False) -> None:
        super().__init__()
        self.encoder, self.temperature, self.symmetric = encoder, temperature, symmetric

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        code = self.encode(batch["code_input_ids"], batch["code_attention_mask"])
        query = self.encode(batch["query_input_ids"], batch["query_attention_mask"])
        loss = info_nce(query, code, temperature=self.temperature, symmetric=self.symmetric, gather=True)
        return LossOutput(loss)
