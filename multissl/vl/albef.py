"""ALBEF (Li et al., NeurIPS 2021, "Align before Fuse: Vision and Language Representation Learning with
Momentum Distillation"): image-text contrast against momentum features and queues with momentum-
distilled soft targets, image-text matching with hard negatives on a fusion encoder, and image-
conditioned masked language modelling with momentum-distilled soft labels.

Reference code: salesforce/ALBEF (``models/model_pretrain.py``, ``models/model_retrieval.py``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from multissl.core import (
    FeatureQueue,
    LossOutput,
    Progress,
    ema_update,
    info_nce,
    momentum_copy,
)
from multissl.encoders.hf import HFEncoder, pool
from multissl.encoders.masking import mask_tokens, special_tokens_mask
from multissl.vl.common import TwoTowers, sample_hard_negatives
from multissl.vl.models import ImageTower, MLMHead, split_text_tower


class ALBEF(TwoTowers):
    """ITC with momentum distillation + ITM with hard negatives + MLM on a fusion encoder.

    The text tower's first ``text_layers`` layers encode the caption; the rest become fusion layers that
    cross-attend to the image tokens. ``momentum_distill=False`` is the paper's ablation without the
    momentum model (in-batch ITC, no queues, hard MLM labels); ``itm`` / ``mlm`` switch those terms off.
    Same-image captions are positives (image ids), as ALBEF's retrieval fine-tuning does. The alpha of
    the soft targets ramps from 0 over the first ``alpha_warmup_epochs`` epochs, as ALBEF's first epoch.

    Deviations from the reference code:
    - positives are all captions of the same image, with ids kept in the queue (``model_retrieval.py``);
      ``model_pretrain.py`` uses the diagonal only: the shipped recipes train on captioned images, which
      have five captions each.
    - hard negatives are drawn vectorised from softmax(sim) with same-image columns masked, falling back
      to uniform on underflow, where the reference loops over rows with a try/except and adds 1e-4 (retrieval
      version); the distribution sampled is otherwise the same.
    - MLM never masks any special token ([CLS], [SEP], [PAD]); the reference masks [SEP] too (only [CLS]
      and [PAD] are protected): masking a structural token teaches nothing about the image.
    - the momentum update runs once per optimizer step after it (``ema_timing = "after_step"``), the
      reference at the start of the next forward: the same point in the sequence without accumulation,
      and one update per optimizer step with it.
    - queue keys are staged in ``forward`` and pushed once per optimizer step, gathered over processes
      (the reference enqueues in its forward); the queue size need not divide the batch (the reference
      asserts it does).
    - the ITC text feature is pooled with ``text_pooling`` (the reference: [CLS]); the MiniLM recipes use
      mean pooling, the pooling MiniLM was trained with.
    """

    def __init__(self, image_tower: ImageTower, text: HFEncoder, *, text_layers: int = 3,
                 extra_fusion_layers: int = 0, momentum_distill: bool = True, itm: bool = True, mlm: bool = True,
                 momentum: float = 0.995, queue_size: int = 65536, alpha: float = 0.4,
                 alpha_warmup_epochs: float = 1.0, mlm_probability: float = 0.15, itm_weight: float = 1.0,
                 mlm_weight: float = 1.0, **kwargs: Any) -> None:
        super().__init__(image_tower, text, **kwargs)
        self.fusion = split_text_tower(text, text_layers, image_tower.width, extra_fusion_layers) if (itm or mlm) else None
        hidden = text.hidden_size
        self.distill, self.use_itm, self.use_mlm = momentum_distill, itm, mlm
        self.momentum, self.alpha, self.alpha_warmup = momentum, alpha, alpha_warmup_epochs
        self.mlm_probability, self.itm_weight, self.mlm_weight = mlm_probability, itm_weight, mlm_weight
        self.itm_head = nn.Linear(hidden, 2) if itm else None
        self.mlm_head = MLMHead(hidden, text.model.config.vocab_size) if mlm else None
        self.register_buffer("epochs_done", torch.zeros(()))
        if momentum_distill:
            self.image_tower_m = momentum_copy(image_tower)
            self.image_proj_m = momentum_copy(self.image_proj)
            self.text_m = momentum_copy(text)
            self.text_proj_m = momentum_copy(self.text_proj)
            self.fusion_m = momentum_copy(self.fusion) if mlm else None
            self.mlm_head_m = momentum_copy(self.mlm_head) if mlm else None
            embed_dim = self.image_proj.out_features
            self.image_queue = FeatureQueue(queue_size, embed_dim, init="random")
            self.text_queue = FeatureQueue(queue_size, embed_dim, init="random")
        tok = text.tokenizer
        self._special_ids = list(tok.all_special_ids)
        self._mask_id = tok.mask_token_id

    # -- momentum state ------------------------------------------------------------------------
    def _pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        pairs = [(self.image_tower, self.image_tower_m), (self.image_proj, self.image_proj_m),
                 (self.text, self.text_m), (self.text_proj, self.text_proj_m)]
        if self.use_mlm:
            pairs += [(self.fusion, self.fusion_m), (self.mlm_head, self.mlm_head_m)]
        return pairs

    ema_timing = "after_step"

    @torch.no_grad()
    def momentum_update(self, progress: Progress) -> None:
        """EMA of the momentum copies (m = 0.995), parameters only as the reference's ``_momentum_update``."""
        if self.distill:
            for online, target in self._pairs():
                ema_update(target, online, self.momentum)

    def after_step(self, progress: Progress) -> None:
        """Clamp the temperature and record the epochs done (the alpha ramp reads them)."""
        super().after_step(progress)
        self.epochs_done.fill_(progress.epoch_fraction)

    def current_alpha(self) -> float:
        """ALBEF's distillation weight, ramped linearly from 0 over the first ``alpha_warmup`` epochs."""
        if self.alpha_warmup <= 0:
            return self.alpha
        return self.alpha * min(1.0, float(self.epochs_done) / self.alpha_warmup)

    def itm_logits(self, text_states: torch.Tensor, text_mask: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """ITM logits (B, 2) of paired rows (text i with image i)."""
        fused = self.fusion(text_states, text_mask, image_tokens)
        return self.itm_head(fused[:, 0])

    # -- the loss ------------------------------------------------------------------------------
    def momentum_features(self, batch: dict[str, torch.Tensor], txt_states: torch.Tensor) -> dict[str, torch.Tensor]:
        """Momentum image tokens/features (of ``image_aug`` when given) and text states/features, no grad."""
        mask = batch["attention_mask"]
        with torch.no_grad():
            img_tokens_m, img_feat_m = self.encode_image(batch.get("image_aug", batch["image"]), momentum=True)
            if self.freeze_text:  # a locked text encoder equals its EMA copy: reuse its states
                txt_states_m = txt_states.detach()
                txt_feat_m = F.normalize(self.text_proj_m(pool(txt_states_m, mask, self.text_pooling)).float(), dim=-1)
            else:
                txt_states_m, txt_feat_m = self.encode_text(batch["input_ids"], mask, momentum=True)
        return {"img_tokens": img_tokens_m, "img_feat": img_feat_m, "txt_states": txt_states_m, "txt_feat": txt_feat_m}

    def contrastive_terms(self, img_feat: torch.Tensor, txt_feat: torch.Tensor, mom: dict[str, torch.Tensor],
                          batch: dict[str, torch.Tensor], temp: torch.Tensor, alpha: float,
                          pos: torch.Tensor) -> dict[str, torch.Tensor]:
        """ALBEF's i2t and t2i InfoNCE against momentum features + queues with soft targets."""
        iq, tq = self.image_queue.keys(), self.text_queue.keys()
        with torch.no_grad():
            soft_i2t = torch.softmax(mom["img_feat"] @ torch.cat([mom["txt_feat"], tq]).t() / temp, dim=1)
            soft_t2i = torch.softmax(mom["txt_feat"] @ torch.cat([mom["img_feat"], iq]).t() / temp, dim=1)
        kw = {"temperature": temp, "normalize": False, "positive_mask": pos, "soft_weight": alpha}
        return {"i2t": info_nce(img_feat, mom["txt_feat"], extra_keys=tq, soft_targets=soft_i2t, **kw),
                "t2i": info_nce(txt_feat, mom["img_feat"], extra_keys=iq, soft_targets=soft_t2i, **kw)}

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        ids, mask = batch["image_ids"], batch["attention_mask"]
        img_tokens, img_feat = self.encode_image(batch["image"])
        txt_states, txt_feat = self.encode_text(batch["input_ids"], mask)
        temp = self.temp()
        logs: dict[str, Any] = {"temperature": temp.detach()}
        b = ids.shape[0]
        img_tokens_m = None
        if not self.distill:  # the paper's ablation without the momentum model
            loss_ita = info_nce(img_feat, txt_feat, temperature=temp, symmetric=True, gather=True, normalize=False,
                                query_ids=ids, key_ids=ids)
            sim_i2t = img_feat @ txt_feat.t() / temp
            sim_t2i = sim_i2t.t()
            logs["itc"] = loss_ita.detach()
        else:
            alpha = self.current_alpha()
            logs["alpha"] = alpha
            mom = self.momentum_features(batch, txt_states)
            img_tokens_m = mom["img_tokens"]
            col_ids = torch.cat([ids, self.text_queue.ids()])
            pos = ids[:, None] == col_ids[None, :]  # (B, B + K): same image = positive
            terms = self.contrastive_terms(img_feat, txt_feat, mom, batch, temp, alpha, pos)
            loss_ita = sum(terms.values()) / len(terms)
            for k, v in terms.items():
                logs[k] = v.detach()
            sim_i2t = img_feat @ mom["txt_feat"].t() / temp
            sim_t2i = txt_feat @ mom["img_feat"].t() / temp
            self.image_queue.stage(mom["img_feat"], ids)  # pushed once per optimizer step (gathered)
            self.text_queue.stage(mom["txt_feat"], ids)
        loss = loss_ita
        if self.use_itm:
            loss_itm = self._itm(img_tokens, txt_states, mask, ids, sim_i2t.detach(), sim_t2i.detach(), b)
            logs["itm"] = loss_itm.detach()
            loss = loss + self.itm_weight * loss_itm
        if self.use_mlm:
            loss_mlm = self._mlm(batch["input_ids"], mask, img_tokens, img_tokens_m)
            logs["mlm"] = loss_mlm.detach()
            loss = loss + self.mlm_weight * loss_mlm
        return LossOutput(loss, logs)

    def _itm(self, img_tokens: torch.Tensor, txt_states: torch.Tensor, mask: torch.Tensor, ids: torch.Tensor,
             sim_i2t: torch.Tensor, sim_t2i: torch.Tensor, b: int) -> torch.Tensor:
        """ITM with one hard negative text per image and one hard negative image per text."""
        neg_img = sample_hard_negatives(sim_t2i[:, :b], ids, ids)  # (B,) an image for each text
        neg_txt = sample_hard_negatives(sim_i2t[:, :b], ids, ids)  # (B,) a text for each image
        text_all = torch.cat([txt_states, txt_states, txt_states[neg_txt]])
        mask_all = torch.cat([mask, mask, mask[neg_txt]])
        image_all = torch.cat([img_tokens, img_tokens[neg_img], img_tokens])
        logits = self.itm_logits(text_all, mask_all, image_all)  # (3B, 2)
        labels = torch.cat([torch.ones(b, dtype=torch.long), torch.zeros(2 * b, dtype=torch.long)]).to(logits.device)
        return F.cross_entropy(logits.float(), labels)

    def _mlm(self, input_ids: torch.Tensor, mask: torch.Tensor, img_tokens: torch.Tensor,
             img_tokens_m: torch.Tensor | None) -> torch.Tensor:
        """Masked LM on the fusion encoder (15%, 80/10/10) with momentum-distilled soft labels."""
        special = special_tokens_mask(input_ids, self._special_ids) | (mask == 0)
        vocab = self.text.model.config.vocab_size
        masked, labels = mask_tokens(input_ids, self._mask_id, vocab, special, rate=self.mlm_probability)
        sel = labels != -100
        if not sel.any():
            return img_tokens.sum() * 0.0
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_text):
            states = self.text.token_states(masked, mask).last_hidden_state
        fused = self.fusion(states, mask, img_tokens)
        logits = self.mlm_head(fused[sel], self.text.model.embeddings.word_embeddings.weight).float()  # (M, V)
        loss = F.cross_entropy(logits, labels[sel])
        alpha = self.current_alpha() if self.distill else 0.0
        if alpha > 0 and img_tokens_m is not None:
            with torch.no_grad():
                states_m = states.detach() if self.freeze_text else \
                    self.text_m.token_states(masked, mask).last_hidden_state
                fused_m = self.fusion_m(states_m, mask, img_tokens_m)
                soft = torch.softmax(self.mlm_head_m(fused_m[sel], self.text_m.model.embeddings.word_embeddings.weight)
                                     .float(), dim=-1)
            distill = -(soft * F.log_softmax(logits, dim=-1)).sum(-1).mean()
            loss = (1 - alpha) * loss + alpha * distill
        return loss
