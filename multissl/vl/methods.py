"""Image-text pre-training: CLIP-style ITC, ALBEF and TCL in one method whose terms are switches.

- ITC only (CLIP, Radford et al. 2021): symmetric in-batch InfoNCE with a learnable temperature;
  ``itc_loss='open_clip'`` computes it with open_clip's own ``ClipLoss`` (the baseline).
- ALBEF (Li et al., NeurIPS 2021, "Align before Fuse"): ITC against momentum features and queues with
  momentum-distilled soft targets (alpha ramped over the first epoch), image-text matching on a fusion
  encoder with one hard negative per sample drawn from the ITC softmax (both directions), and masked
  language modelling conditioned on the image with momentum-distilled soft labels.
- TCL (Yang et al., CVPR 2022, "Vision-Language Pre-Training with Triple Contrastive Learning"):
  ALBEF plus intra-modal contrast (image view 1 vs momentum image view 2; text vs momentum text, the
  views differing by dropout) and local mutual information (each global feature vs the local tokens of
  its own sample, against every other sample's local tokens); the contrastive terms are averaged with
  equal weight as in the official code (``loss_ita = sum of the 6 terms / 6``).

Same-image captions are positives everywhere (ALBEF's retrieval fine-tuning uses image ids this way).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from multissl.core import (
    FeatureQueue,
    LossOutput,
    Method,
    Progress,
    Temperature,
    ema_update,
    info_nce,
    momentum_copy,
)
from multissl.encoders.hf import HFEncoder, pool
from multissl.encoders.masking import mask_tokens, special_tokens_mask
from multissl.vl.models import ImageTower, MLMHead, patch_pool, split_text_tower


@torch.no_grad()
def sample_hard_negatives(sim: torch.Tensor, row_ids: torch.Tensor, col_ids: torch.Tensor,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """One hard negative column per row, drawn from softmax(sim) over the columns that are NOT positives
    (a different image id), as ALBEF's ITM does. (B, C) sims -> (B,) column indices, vectorised.
    Rows whose columns are all positives fall back to column (row + 1) % C."""
    same = row_ids[:, None] == col_ids[None, :]
    weights = torch.softmax(sim.float(), dim=1).masked_fill(same, 0.0)
    empty = weights.sum(1) <= 0
    if empty.any():  # underflow: uniform over the valid columns
        weights[empty] = (~same[empty]).float()
    none = weights.sum(1) <= 0
    weights[none] = 1.0
    idx = torch.multinomial(weights, 1, generator=generator).squeeze(1)
    if none.any():
        rows = torch.arange(sim.shape[0], device=sim.device)
        idx = torch.where(none, (rows + 1) % sim.shape[1], idx)
    return idx


def global_local_infonce(local: torch.Tensor, glob: torch.Tensor, temperature: torch.Tensor | float,
                         local_mask: torch.Tensor | None = None) -> torch.Tensor:
    """TCL's local MI term (``in_batch_g2l_loss``): for every sample n and local token j, the positive is
    <g_n, l_nj> and the negatives are <g_n, l_n'j'> for all other samples n' and their valid tokens j'.
    local (N, T, D), glob (N, D), local_mask (N, T) (1 = real token). The negatives do not depend on j,
    so the per-token loss is softplus(logsumexp(negatives_n) - positive_nj)."""
    n, t, d = local.shape
    pos = torch.einsum("ntd,nd->nt", local, glob) / temperature  # (N, T)
    neg = (glob @ local.reshape(n * t, d).t() / temperature).view(n, n, t)  # (N, N', T)
    invalid = torch.eye(n, dtype=torch.bool, device=glob.device)[:, :, None].expand(n, n, t)
    if local_mask is not None:
        invalid = invalid | ~local_mask.bool()[None, :, :]
    lse = neg.masked_fill(invalid, float("-inf")).reshape(n, n * t).logsumexp(1)  # (N,)
    per_token = F.softplus(lse[:, None] - pos)  # -log p(positive) for each (n, j)
    if local_mask is None:
        return per_token.mean()
    m = local_mask.to(per_token.dtype)
    return ((per_token * m).sum(1) / m.sum(1).clamp_min(1)).mean()


class VLMethod(Method):
    """Two towers + projections, and (as switched on) momentum copies, queues, fusion encoder, ITM and
    MLM heads. ``forward(batch)`` takes :class:`multissl.vl.data.Batch`; ``embed`` gives normalised
    image features for batches with ``image``, else text features."""

    def __init__(self, image_tower: ImageTower, text: HFEncoder, *, embed_dim: int = 256, text_pooling: str = "cls",
                 text_layers: int = 3, extra_fusion_layers: int = 0, momentum_distill: bool = True,
                 itm: bool = True, mlm: bool = True, intra: bool = False, local: bool = False,
                 itc_loss: str = "multissl", temperature: float = 0.07, temperature_min: float = 0.001,
                 temperature_max: float = 0.5, temperature_param: str = "raw", learn_temperature: bool = True,
                 momentum: float = 0.995, queue_size: int = 65536, alpha: float = 0.4, alpha_warmup_epochs: float = 1.0,
                 mlm_probability: float = 0.15, itm_weight: float = 1.0, mlm_weight: float = 1.0,
                 freeze_text: bool = False) -> None:
        super().__init__()
        if itc_loss not in ("multissl", "open_clip"):
            raise ValueError("itc_loss must be 'multissl' or 'open_clip'")
        if itc_loss == "open_clip" and momentum_distill:
            raise ValueError("open_clip's ClipLoss has no momentum distillation: set momentum_distill=false")
        if (intra or local) and not momentum_distill:
            raise ValueError("TCL's intra-modal and local-MI terms use the momentum encoders: set momentum_distill=true")
        self.image_tower, self.text = image_tower, text
        self.text_pooling = text_pooling
        self.fusion = split_text_tower(text, text_layers, image_tower.width, extra_fusion_layers) if (itm or mlm) else None
        hidden = text.hidden_size
        self.image_proj = nn.Linear(image_tower.width, embed_dim)
        self.text_proj = nn.Linear(hidden, embed_dim)
        self.temp = Temperature(temperature, learnable=learn_temperature, min=temperature_min, max=temperature_max,
                                parametrization=temperature_param)
        self.distill, self.use_itm, self.use_mlm, self.intra, self.local = momentum_distill, itm, mlm, intra, local
        self.itc_loss, self.momentum, self.alpha, self.alpha_warmup = itc_loss, momentum, alpha, alpha_warmup_epochs
        self.mlm_probability, self.itm_weight, self.mlm_weight = mlm_probability, itm_weight, mlm_weight
        self.itm_head = nn.Linear(hidden, 2) if itm else None
        self.mlm_head = MLMHead(hidden, text.model.config.vocab_size) if mlm else None
        self.register_buffer("epochs_done", torch.zeros(()))
        self._clip_loss = None
        if momentum_distill:
            self.image_tower_m = momentum_copy(image_tower)
            self.image_proj_m = momentum_copy(self.image_proj)
            self.text_m = momentum_copy(text)
            self.text_proj_m = momentum_copy(self.text_proj)
            self.fusion_m = momentum_copy(self.fusion) if mlm else None
            self.mlm_head_m = momentum_copy(self.mlm_head) if mlm else None
            self.image_queue = FeatureQueue(queue_size, embed_dim, init="random")
            self.text_queue = FeatureQueue(queue_size, embed_dim, init="random")
        self.freeze_text = freeze_text
        if freeze_text:  # a locked text encoder (LiT-style); fusion layers and heads still train
            for p in self.text.parameters():
                p.requires_grad_(False)
        tok = text.tokenizer
        self._special_ids = list(tok.all_special_ids)
        self._mask_id = tok.mask_token_id

    # -- pairs of (online, momentum) modules -------------------------------------------------
    def _pairs(self) -> list[tuple[nn.Module, nn.Module]]:
        pairs = [(self.image_tower, self.image_tower_m), (self.image_proj, self.image_proj_m),
                 (self.text, self.text_m), (self.text_proj, self.text_proj_m)]
        if self.use_mlm:
            pairs += [(self.fusion, self.fusion_m), (self.mlm_head, self.mlm_head_m)]
        return pairs

    def after_step(self, progress: Progress) -> None:
        """Clamp the temperature, EMA-update the momentum copies (m = 0.995) and record progress."""
        self.temp.clamp_()
        self.epochs_done.fill_(progress.epoch_fraction)
        if self.distill:
            for online, target in self._pairs():
                ema_update(target, online, self.momentum)

    def current_alpha(self) -> float:
        """ALBEF's distillation weight, ramped linearly from 0 over the first ``alpha_warmup`` epochs."""
        if self.alpha_warmup <= 0:
            return self.alpha
        return self.alpha * min(1.0, float(self.epochs_done) / self.alpha_warmup)

    # -- encoders ------------------------------------------------------------------------------
    def encode_image(self, image: torch.Tensor, momentum: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(tokens (B, 1+N, W), normalised features (B, E))."""
        tower, proj = (self.image_tower_m, self.image_proj_m) if momentum else (self.image_tower, self.image_proj)
        tokens = tower(image)
        return tokens, F.normalize(proj(tokens[:, 0]).float(), dim=-1)

    def encode_text(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    momentum: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(token states (B, L, H), normalised features (B, E))."""
        enc, proj = (self.text_m, self.text_proj_m) if momentum else (self.text, self.text_proj)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not (self.freeze_text and not momentum)):
            states = enc.token_states(input_ids, attention_mask).last_hidden_state
        pooled = pool(states, attention_mask, self.text_pooling)
        return states, F.normalize(proj(pooled).float(), dim=-1)

    def itm_logits(self, text_states: torch.Tensor, text_mask: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        """ITM logits (B, 2) of paired rows (text i with image i)."""
        fused = self.fusion(text_states, text_mask, image_tokens)
        return self.itm_head(fused[:, 0])

    # -- the loss ------------------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        ids, mask = batch["image_ids"], batch["attention_mask"]
        img_tokens, img_feat = self.encode_image(batch["image"])
        txt_states, txt_feat = self.encode_text(batch["input_ids"], mask)
        temp = self.temp()
        logs: dict[str, Any] = {"temperature": temp.detach()}
        b = ids.shape[0]
        if not self.distill:
            if self.itc_loss == "open_clip":
                if self._clip_loss is None:
                    from open_clip.loss import ClipLoss

                    from multissl.core import rank, world_size

                    self._clip_loss = ClipLoss(local_loss=True, gather_with_grad=True, rank=rank(),
                                               world_size=world_size())
                loss_ita = self._clip_loss(img_feat, txt_feat, 1.0 / temp)
            else:
                loss_ita = info_nce(img_feat, txt_feat, temperature=temp, symmetric=True, gather=True,
                                    normalize=False, query_ids=ids, key_ids=ids)
            sim_i2t = img_feat @ txt_feat.t() / temp
            sim_t2i = sim_i2t.t()
            img_tokens_m = None
            logs["itc"] = loss_ita.detach()
        else:
            alpha = self.current_alpha()
            logs["alpha"] = alpha
            with torch.no_grad():
                view = batch.get("image_aug", batch["image"])
                img_tokens_m, img_feat_m = self.encode_image(view, momentum=True)
                if self.freeze_text:  # a locked text encoder equals its EMA copy: reuse its states
                    txt_states_m = txt_states.detach()
                    pooled = pool(txt_states_m, mask, self.text_pooling)
                    txt_feat_m = F.normalize(self.text_proj_m(pooled).float(), dim=-1)
                else:
                    txt_states_m, txt_feat_m = self.encode_text(batch["input_ids"], mask, momentum=True)
                iq, tq = self.image_queue.keys(), self.text_queue.keys()
                col_ids = torch.cat([ids, self.text_queue.ids()])
                pos = ids[:, None] == col_ids[None, :]  # (B, B + K): same image = positive
                txt_all_m = torch.cat([txt_feat_m, tq])
                img_all_m = torch.cat([img_feat_m, iq])
                soft_i2t = torch.softmax(img_feat_m @ txt_all_m.t() / temp, dim=1)
                soft_t2i = torch.softmax(txt_feat_m @ img_all_m.t() / temp, dim=1)
            kw = {"temperature": temp, "normalize": False, "positive_mask": pos, "soft_weight": alpha}
            terms = {"i2t": info_nce(img_feat, txt_feat_m, extra_keys=tq, soft_targets=soft_i2t, **kw),
                     "t2i": info_nce(txt_feat, img_feat_m, extra_keys=iq, soft_targets=soft_t2i, **kw)}
            if self.intra:  # TCL intra-modal contrast (hard targets)
                kw_h = {"temperature": temp, "normalize": False, "positive_mask": pos}
                terms["i2i"] = info_nce(img_feat, img_feat_m, extra_keys=iq, **kw_h)
                terms["t2t"] = info_nce(txt_feat, txt_feat_m, extra_keys=tq, **kw_h)
            if self.local:  # TCL local MI: global online features vs momentum local tokens
                with torch.no_grad():
                    img_local = patch_pool(F.normalize(self.image_proj_m(img_tokens_m[:, 1:]).float(), dim=-1))
                    txt_local = F.normalize(self.text_proj_m(txt_states_m[:, 1:]).float(), dim=-1)
                terms["g2l_t"] = global_local_infonce(txt_local, txt_feat, temp, mask[:, 1:])
                terms["g2l_i"] = global_local_infonce(img_local, img_feat, temp)
            loss_ita = sum(terms.values()) / len(terms)
            for k, v in terms.items():
                logs[k] = v.detach()
            sim_i2t = img_feat @ txt_feat_m.t() / temp
            sim_t2i = txt_feat @ img_feat_m.t() / temp
            self.image_queue.push(img_feat_m, ids)
            self.text_queue.push(txt_feat_m, ids)
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

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if "image" in batch:
            return self.encode_image(batch["image"])[1]
        return self.encode_text(batch["input_ids"], batch["attention_mask"])[1]

    def optimizer_param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Weight decay on matrices only (biases, norms and the temperature are not decayed), as ALBEF."""
        decay, no_decay = [], []
        for p in self.parameters():
            if p.requires_grad:
                (decay if p.ndim >= 2 else no_decay).append(p)
        return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
