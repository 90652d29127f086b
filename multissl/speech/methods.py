"""TERA (Liu, Li, Lee, "TERA: Self-Supervised Learning of Transformer Encoder Representation for
Speech", IEEE/ACM TASLP 2021): reconstruct clean log-mel frames from time / frequency / magnitude
altered ones; L1 over the altered positions only (s3prl ``TransformerForMaskedAcousticModel``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from multissl.core import LossOutput, Method
from multissl.speech.alterations import alter
from multissl.speech.models import SpecHead, TeraEncoder, pool


@dataclass
class AlterationConfig:
    """TERA's alteration settings (paper / s3prl ``logMelBase-T-F-M.yaml`` values)."""

    time: bool = True
    proportion: float = 0.15
    span: int = 7
    p_zero: float = 0.8
    p_random: float = 0.1
    frequency: bool = True
    max_frequency: float = 0.2
    magnitude: bool = True
    p_noise: float = 0.15
    noise_std: float = 0.2


class TeraMethod(Method):
    """TERA (Liu, Li, Lee, TASLP 2021): encoder + prediction head reconstructing clean log-mel frames from
    time / frequency / magnitude altered ones, L1 on the altered positions; batches are
    {"feats": (B, F, D) CMVN log-mel, "lengths": (B,)}.

    Reference code: github.com/s3prl/s3prl (``pretrain/mockingjay/task.py``,
    ``upstream/mockingjay/model.py`` ``TransformerForMaskedAcousticModel``, ``config/.../tera``).

    Deviations from the reference code:
    - Padding is never chosen, altered or a target (the reference can alter padded frames of short
      utterances in a padded batch): the loss sees speech only.
    - Long utterances are cut into consecutive pieces of ``max_frames`` instead of random crops, so every
      frame is used every epoch.
    - The front end is our Kaldi-compatible torch fbank (``features.py``), not torchaudio's Kaldi
      compliance module: same definition, checked against it in the tests when torchaudio is installed.
    """

    def __init__(self, encoder: TeraEncoder, output_dim: int = 80, alterations: AlterationConfig | None = None,
                 loss: str = "l1") -> None:
        super().__init__()
        self.encoder = encoder
        self.head = SpecHead(encoder.hidden, output_dim, eps=encoder.norm.eps)
        self.alterations = alterations or AlterationConfig()
        if loss not in ("l1", "mse"):
            raise ValueError(f"loss must be 'l1' or 'mse', got {loss}")
        self.loss_name = loss
        # global input normalisation (identity unless set_input_stats is called): saved with the weights
        self.register_buffer("input_mean", torch.zeros(output_dim))
        self.register_buffer("input_std", torch.ones(output_dim))

    @torch.no_grad()
    def set_input_stats(self, frames: torch.Tensor) -> None:
        """Global CMVN: normalise every input frame with the mean / std of ``frames`` (N, D)."""
        self.input_mean.copy_(frames.mean(0))
        self.input_std.copy_(frames.std(0).clamp_min(1e-5))

    def normalize(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, F, D) input frames after the global normalisation; padding stays zero."""
        x, lengths = batch["feats"], batch["lengths"]
        valid = (torch.arange(x.shape[1], device=x.device)[None] < lengths[:, None]).unsqueeze(-1)
        return torch.where(valid, (x - self.input_mean) / self.input_std, torch.zeros_like(x))

    def forward(self, batch: dict[str, torch.Tensor]) -> LossOutput:
        x, lengths = self.normalize(batch), batch["lengths"]
        altered = alter(x, lengths, **asdict(self.alterations))
        pred = self.head(self.encoder(altered.x, lengths)[-1])  # (B, F, D)
        mask = altered.mask
        if not mask.any():  # nothing altered (e.g. only very short utterances): no signal this step
            return LossOutput(pred.sum() * 0.0, {"altered_fraction": 0.0})
        fn = F.l1_loss if self.loss_name == "l1" else F.mse_loss
        loss = fn(pred[mask], x[mask])
        valid = lengths.sum().clamp_min(1) * x.shape[-1]
        return LossOutput(loss, {"altered_fraction": mask.sum().float() / valid})

    @torch.no_grad()
    def hidden_states(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Frame features of every layer (input representation first), each (B, F, hidden)."""
        return self.encoder(self.normalize(batch), batch["lengths"])

    @torch.no_grad()
    def embed(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Utterance embedding: mean of the last layer over valid frames (B, hidden)."""
        return pool(self.hidden_states(batch)[-1], batch["lengths"], "mean")
