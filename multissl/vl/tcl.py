"""TCL (Yang et al., CVPR 2022, "Vision-Language Pre-Training with Triple Contrastive Learning"): ALBEF
plus intra-modal contrast and local mutual information.

Reference code: uta-smile/TCL (``models/model_pretrain.py``, ``models/model_retrieval.py``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from multissl.core import info_nce
from multissl.encoders.hf import HFEncoder
from multissl.vl.albef import ALBEF
from multissl.vl.common import global_local_infonce
from multissl.vl.models import ImageTower, patch_pool


class TCL(ALBEF):
    """ALBEF's objective with two more kinds of contrastive term, averaged with equal weight as the official
    code does (``loss_ita = sum of the 6 terms / 6``):

    - intra-modal contrast (i2i: image view 1 vs the momentum features of view 2 and the image queue;
      t2t: text vs its momentum features and the text queue, the views differing by dropout), hard targets;
    - local MI (g2l): each global feature against the momentum local tokens of its own sample, negatives
      every other sample's valid local tokens; image patch tokens are average-pooled first.
    ``intra`` / ``local`` switch the two kinds off (the paper's ablation).

    Deviations from the reference code:
    - the ALBEF deviations (same-image positives with ids, vectorised hard negatives, MLM special tokens,
      momentum update point, queue push in forward, ITC text pooling): see :class:`ALBEF`.
    - intra-modal positives are all same-image entries of the batch and the queue (the reference: the
      diagonal), consistent with the image-text terms here.
    - CNN image towers give a grid of feature-map tokens, pooled like the reference's ViT patches (kernel
      and stride floor(sqrt(side))); non-square token counts are used unpooled.
    """

    def __init__(self, image_tower: ImageTower, text: HFEncoder, *, intra: bool = True, local: bool = True,
                 **kwargs: Any) -> None:
        if not kwargs.get("momentum_distill", True):
            raise ValueError("TCL's intra-modal and local-MI terms use the momentum encoders: keep momentum_distill")
        super().__init__(image_tower, text, **kwargs)
        self.intra, self.local = intra, local

    def contrastive_terms(self, img_feat: torch.Tensor, txt_feat: torch.Tensor, mom: dict[str, torch.Tensor],
                          batch: dict[str, torch.Tensor], temp: torch.Tensor, alpha: float,
                          pos: torch.Tensor) -> dict[str, torch.Tensor]:
        terms = super().contrastive_terms(img_feat, txt_feat, mom, batch, temp, alpha, pos)
        iq, tq = self.image_queue.keys(), self.text_queue.keys()
        if self.intra:
            kw = {"temperature": temp, "normalize": False, "positive_mask": pos}
            terms["i2i"] = info_nce(img_feat, mom["img_feat"], extra_keys=iq, **kw)
            terms["t2t"] = info_nce(txt_feat, mom["txt_feat"], extra_keys=tq, **kw)
        if self.local:
            with torch.no_grad():
                img_local = patch_pool(F.normalize(self.image_proj_m(mom["img_tokens"][:, 1:]).float(), dim=-1))
                txt_local = F.normalize(self.text_proj_m(mom["txt_states"][:, 1:]).float(), dim=-1)
            terms["g2l_t"] = global_local_infonce(txt_local, txt_feat, temp, batch["attention_mask"][:, 1:])
            terms["g2l_i"] = global_local_infonce(img_local, img_feat, temp)
        return terms
