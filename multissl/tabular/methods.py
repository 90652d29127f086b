"""SCARF (Bahri, Jiang, Tay, Metzler, ICLR 2022): contrastive learning with random feature corruption.

A view replaces a random ``corruption_rate`` fraction of each row's features with values drawn from
those features' empirical marginals (the same feature of random training rows); the clean row and its
corrupted view are a positive pair under InfoNCE.
"""

from __future__ import annotations

import torch

from multissl.core import MLP, LossOutput, Method, info_nce


class ScarfMethod(Method):
    """Encoder f and pre-training head g; ``embed`` returns f(x).

    Reference code: none released with the paper; compared with its description (section 3) and the
    community port clabrugere/pytorch-scarf.

    Deviations from the reference code:
    - Features are standardised with the training mean/std inside the method (the paper standardises
      the data beforehand); the corruption samples raw marginals, so the result is the same.
    """

    def __init__(self, train_x: torch.Tensor, hidden: int = 256, encoder_layers: int = 4, head_layers: int = 2,
                 corruption_rate: float = 0.6, temperature: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("marginals", train_x.clone())  # (N, F) rows to sample replacements from
        self.register_buffer("mean", train_x.mean(0))
        self.register_buffer("std", train_x.std(0).clamp_min(1e-6))
        dims = [train_x.shape[1]] + [hidden] * encoder_layers
        self.encoder = MLP(dims, norm=None)
        self.head = MLP([hidden] * (head_layers + 1), norm=None)
        self.corruption_rate, self.temperature = corruption_rate, temperature

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """Replace a random ``corruption_rate`` of each row's features by marginal samples."""
        b, f = x.shape
        k = int(round(self.corruption_rate * f))
        mask = torch.zeros(b, f, dtype=torch.bool, device=x.device)
        idx = torch.rand(b, f, device=x.device).argsort(1)[:, :k]
        mask.scatter_(1, idx, True)
        rows = torch.randint(0, self.marginals.shape[0], (b, f), device=x.device)
        replacement = self.marginals[rows, torch.arange(f, device=x.device)]  # (B, F)
        return torch.where(mask, replacement, x)

    def _f(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.mean) / self.std)

    def forward(self, batch: torch.Tensor) -> LossOutput:
        anchor = self.head(self._f(batch))
        positive = self.head(self._f(self.corrupt(batch)))
        loss = info_nce(anchor, positive, temperature=self.temperature, gather=True)
        return LossOutput(loss)

    @torch.no_grad()
    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        return self._f(batch)

