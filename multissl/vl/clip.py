"""CLIP-style image-text contrastive pre-training (Radford et al., ICML 2021, "Learning Transferable
Visual Models From Natural Language Supervision").

Reference code: mlfoundations/open_clip (``src/open_clip/loss.py`` ``ClipLoss``; the logit-scale clamp
in ``src/open_clip_train/train.py``).
"""

from __future__ import annotations

from typing import Any

import torch

from multissl.core import LossOutput, info_nce
from multissl.encoders.hf import HFEncoder
from multissl.vl.common import TwoTowers
from multissl.vl.models import ImageTower


class CLIP(TwoTowers):
    """Symmetric in-batch InfoNCE between image and caption features with a learnable temperature.

    ``itc_loss='open_clip'`` computes the loss with open_clip's own ``ClipLoss`` (the baseline);
    ``'multissl'`` with :func:`multissl.core.info_nce` (gathered across processes, open_clip's local-loss
    pattern). The temperature is parametrised as CLIP's log logit scale (``temperature_param=
    'log_inverse'``, clamped at T >= 0.01 after each step) in the shipped recipes.

    Deviations from the reference code:
    - captions of the same image in one batch are positives of each other (``info_nce`` with image ids),
      where ``ClipLoss`` takes only the diagonal; with the default ``data.sampling=image`` a batch never
      holds one image twice, so the two agree there.
    - towers are any timm / open_clip / torchvision / Hugging Face image model and any Hugging Face text
      encoder with a linear projection each (open_clip builds its own towers); the recipe names them.
    """

    def __init__(self, image_tower: ImageTower, text: HFEncoder, *, itc_loss: str = "multissl", **kwargs: Any) -> None:
        super().__init__(image_tower, text, **kwargs)
        if itc_loss not in ("multissl", "open_clip"):
            raise ValueError("itc_loss must be 'multissl' or 'open_clip'")
        self.itc_loss = itc_loss
        self._clip_loss = None

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        ids = batch["image_ids"]
        _, img_feat = self.encode_image(batch["image"])
        _, txt_feat = self.encode_text(batch["input_ids"], batch["attention_mask"])
        temp = self.temp()
        if self.itc_loss == "open_clip":
            if self._clip_loss is None:
                from open_clip.loss import ClipLoss

                from multissl.core import rank, world_size

                self._clip_loss = ClipLoss(local_loss=True, gather_with_grad=True, rank=rank(), world_size=world_size())
            loss = self._clip_loss(img_feat, txt_feat, 1.0 / temp)
        else:
            loss = info_nce(img_feat, txt_feat, temperature=temp, symmetric=True, gather=True, normalize=False,
                            query_ids=ids, key_ids=ids)
        return LossOutput(loss, {"temperature": temp.detach(), "itc": loss.detach()})
