"""Image self-supervised methods, each a thin class over the shared core losses.

A batch is a uint8 tensor (B, C, H, W) of raw images; the method draws its views on the batch's
device with :class:`~multissl.image.augment.BatchAugment` (torch's global RNG: exact resume), so the
GPU is never starved by per-image CPU transforms. ``embed`` returns backbone features of the
un-augmented (normalised) images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from multissl.core import (
    MLP,
    FeatureQueue,
    LossOutput,
    Method,
    MomentumSchedule,
    Progress,
    barlow_twins,
    dcl,
    ema_update,
    info_nce,
    mix_hard_negatives,
    momentum_copy,
    nt_xent,
    scaled_cosine_error,
    sinkhorn_knopp,
)
from multissl.image.augment import BatchAugment, ViewConfig, normalize, to_float


class ImageMethod(Method):
    """Backbone + view pipelines; subclasses add heads and the loss."""

    def __init__(self, backbone: nn.Module, feat_dim: int, views: list[ViewConfig], channels_last: bool = False):
        super().__init__()
        self.backbone, self.feat_dim = backbone, feat_dim
        self.augments = nn.ModuleList(BatchAugment(v) for v in views)
        self.mean, self.std = views[0].mean, views[0].std
        self.channels_last = channels_last
        if channels_last:
            self.to(memory_format=torch.channels_last)

    def _fmt(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def encode(self, x: torch.Tensor, backbone: nn.Module | None = None) -> torch.Tensor:
        """Backbone features (B, D) of normalised float images."""
        return (backbone or self.backbone)(self._fmt(x))

    def views(self, images: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return [aug(images) for aug in self.augments]

    @torch.no_grad()
    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        x = normalize(to_float(batch), self.mean, self.std)
        return self.encode(x).float()


class SimCLR(ImageMethod):
    """SimCLR (Chen, Kornblith, Norouzi, Hinton, ICML 2020): two views through one encoder and an MLP
    projector, NT-Xent over the 2N views (both views in one forward, as the official code).

    Reference code: google-research/simclr (``tf2/model.py``, ``objective.py``).

    Deviations from the reference code:
    - The projector's output layer has no BatchNorm (the reference batch-normalises it, without bias).
    - BatchNorm statistics are per process unless ``train.sync_batchnorm=true`` (the reference uses
      global BatchNorm across cores).
    - Weight decay applies to every parameter (the reference's LARS skips biases and BN parameters).
    """

    def __init__(self, backbone, feat_dim, views, proj_hidden: int = 2048, proj_dim: int = 128,
                 temperature: float = 0.5, channels_last: bool = False) -> None:
        super().__init__(backbone, feat_dim, views, channels_last)
        self.projector = MLP([feat_dim, proj_hidden, proj_dim], norm="batch")
        self.temperature = temperature

    def project_views(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        v1, v2 = self.views(images)
        z = self.projector(self.encode(torch.cat([v1, v2])))
        return z.chunk(2)

    def forward(self, batch: torch.Tensor) -> LossOutput:
        z1, z2 = self.project_views(batch)
        return LossOutput(nt_xent(z1, z2, self.temperature, gather=True))


class DCL(SimCLR):
    """Decoupled contrastive learning (Yeh et al., ECCV 2022): SimCLR with the positive removed from
    the denominator; ``vmf_sigma`` turns on DCLW's weighting.

    Reference code: the paper's loss as released in lightly (``lightly/loss/dcl_loss.py``).

    Deviations from the reference code: none in the loss; the SimCLR deviations apply to the rest.
    """

    def __init__(self, backbone, feat_dim, views, proj_hidden: int = 2048, proj_dim: int = 128,
                 temperature: float = 0.1, vmf_sigma: float | None = None, channels_last: bool = False) -> None:
        super().__init__(backbone, feat_dim, views, proj_hidden, proj_dim, temperature, channels_last)
        self.vmf_sigma = vmf_sigma

    def forward(self, batch: torch.Tensor) -> LossOutput:
        z1, z2 = self.project_views(batch)
        return LossOutput(dcl(z1, z2, self.temperature, self.vmf_sigma, gather=True))


class MoCoV2(ImageMethod):
    """MoCo v2 (Chen, Fan, Girshick, He, 2020): query encoder + MLP head, momentum key encoder, FIFO
    queue of keys, InfoNCE with temperature 0.2 over ``[q.k+ | q.queue]``.

    State follows the core contract: ``forward`` stages its keys (every micro-batch), the trainer pushes
    them once per optimizer step (gathered over processes) and runs :meth:`momentum_update` after the
    optimizer step. Reference code: facebookresearch/moco (``moco/builder.py``).

    Deviations from the reference code:
    - The key EMA runs after the optimizer step rather than at the start of the next forward: the same
      key encoder meets every forward (one update per step), and it works under gradient accumulation.
    - The keys are not batch-shuffled across GPUs (shuffle-BN): BN statistics are per process here;
      ``train.sync_batchnorm`` is the alternative the trainer offers.
    - ``in_batch_negatives=True`` (off by default, the reference's choice) adds the other in-batch keys as
      negatives; ``symmetric=True`` (off) also uses view 2 as query (MoCo v3 / lightly style).
    - ``ema_update`` moves parameters only, as the reference; the key encoder's BN buffers follow its own
      forward passes.
    """

    ema_timing = "after_step"

    def __init__(self, backbone, feat_dim, views, proj_hidden: int = 2048, proj_dim: int = 128,
                 temperature: float = 0.2, queue_size: int = 65536, momentum: float = 0.999,
                 symmetric: bool = False, in_batch_negatives: bool = False, channels_last: bool = False) -> None:
        super().__init__(backbone, feat_dim, views, channels_last)
        self.projector = MLP([feat_dim, proj_hidden, proj_dim], norm=None)  # MoCo v2: fc-ReLU-fc
        self.key_backbone, self.key_projector = momentum_copy(self.backbone), momentum_copy(self.projector)
        self.queue = FeatureQueue(queue_size, proj_dim, init="random")  # the reference: random unit keys
        self.temperature, self.momentum, self.symmetric = temperature, momentum, symmetric
        self.in_batch_negatives = in_batch_negatives

    def _query(self, x):
        return F.normalize(self.projector(self.encode(x)), dim=-1)

    @torch.no_grad()
    def _key(self, x):
        return F.normalize(self.key_projector(self.encode(x, self.key_backbone)), dim=-1)

    def negatives(self, q: torch.Tensor) -> list[torch.Tensor]:
        """Extra negative blocks for query rows q: the queue (random unit keys at the start, as the reference)."""
        return [self.queue.keys()]

    def _loss(self, q, k) -> torch.Tensor:
        return info_nce(q, k, temperature=self.temperature, extra_keys=self.negatives(q), gather=True,
                        in_batch_negatives=self.in_batch_negatives)

    def forward(self, batch: torch.Tensor) -> LossOutput:
        v1, v2 = self.views(batch)
        q1, k2 = self._query(v1), self._key(v2)
        loss = self._loss(q1, k2)
        self.queue.stage(k2)
        if self.symmetric:
            q2, k1 = self._query(v2), self._key(v1)
            loss = 0.5 * (loss + self._loss(q2, k1))
            self.queue.stage(k1)
        return LossOutput(loss)

    @torch.no_grad()
    def momentum_update(self, progress: Progress) -> None:
        ema_update(self.key_backbone, self.backbone, self.momentum)
        ema_update(self.key_projector, self.projector, self.momentum)


class MoCHi(MoCoV2):
    """MoCHi (Kalantidis et al., NeurIPS 2020): MoCo v2 plus, per query, ``num_mixed`` synthetic
    negatives mixed from its ``num_hard`` hardest queue negatives and ``num_self_mixed`` mixes of the
    query with a hard negative (``mix_hard_negatives``), from ``mix_start_epoch`` on (the queue starts
    full of random unit keys, as MoCo's).

    Deviations from the reference code: no official code was released; the MoCo v2 deviations apply.
    """

    def __init__(self, backbone, feat_dim, views, num_hard: int = 1024, num_mixed: int = 1024,
                 num_self_mixed: int = 256, self_mix_max: float = 0.5, mix_start_epoch: int = 0, **moco) -> None:
        super().__init__(backbone, feat_dim, views, **moco)
        self.num_hard, self.num_mixed, self.num_self_mixed = num_hard, num_mixed, num_self_mixed
        self.self_mix_max, self.mix_start_epoch = self_mix_max, mix_start_epoch
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))

    def negatives(self, q: torch.Tensor) -> list[torch.Tensor]:
        blocks = super().negatives(q)
        if blocks and len(self.queue) == self.queue.size and int(self.epoch) >= self.mix_start_epoch:
            mixed = mix_hard_negatives(q.detach(), blocks[0], self.num_hard, self.num_mixed, self.num_self_mixed,
                                       self.self_mix_max)  # (B, s + s', D)
            blocks.append(mixed.to(q.dtype))
        return blocks

    def after_step(self, progress: Progress) -> None:
        self.epoch.fill_(progress.epoch)


class BYOL(ImageMethod):
    """BYOL (Grill et al., NeurIPS 2020): online encoder + projector + predictor regress the EMA
    target's projection of the other view (2 - 2 cos, symmetrised); target momentum follows the cosine
    schedule 0.996 -> 1 and the EMA runs after the optimizer step (``ema_timing = "after_step"``, as the
    reference). Reference code: google-deepmind/deepmind-research ``byol/``.

    Deviations from the reference code:
    - The loss is the mean over the batch of both directions (the reference sums the two per-sample
      terms, then means): identical.
    - No LARS exclusion lists or weight-decay masks are built here; the recipe's optimizer decides.
    """

    ema_timing = "after_step"

    def __init__(self, backbone, feat_dim, views, proj_hidden: int = 4096, proj_dim: int = 256,
                 pred_hidden: int = 4096, base_momentum: float = 0.996, final_momentum: float = 1.0,
                 channels_last: bool = False) -> None:
        super().__init__(backbone, feat_dim, views, channels_last)
        self.projector = MLP([feat_dim, proj_hidden, proj_dim], norm="batch")
        self.predictor = MLP([proj_dim, pred_hidden, proj_dim], norm="batch")
        self.target_backbone, self.target_projector = momentum_copy(self.backbone), momentum_copy(self.projector)
        self.schedule = MomentumSchedule(base_momentum, final_momentum, "cosine")
        self.register_buffer("momentum", torch.tensor(base_momentum))

    def forward(self, batch: torch.Tensor) -> LossOutput:
        v1, v2 = self.views(batch)
        p1 = self.predictor(self.projector(self.encode(v1)))
        p2 = self.predictor(self.projector(self.encode(v2)))
        with torch.no_grad():
            t1 = self.target_projector(self.encode(v1, self.target_backbone))
            t2 = self.target_projector(self.encode(v2, self.target_backbone))
        loss = 2 * scaled_cosine_error(p1, t2, alpha=1.0) + 2 * scaled_cosine_error(p2, t1, alpha=1.0)
        return LossOutput(loss, {"momentum": self.momentum})

    @torch.no_grad()
    def momentum_update(self, progress: Progress) -> None:
        m = self.schedule(progress.fraction)
        self.momentum.fill_(m)
        ema_update(self.target_backbone, self.backbone, m)
        ema_update(self.target_projector, self.projector, m)


class BarlowTwins(ImageMethod):
    """Barlow Twins (Zbontar et al., ICML 2021): a 3-layer projector (8192-d in the paper) and the
    cross-correlation loss with off-diagonal weight lambda = 5e-3.

    Reference code: facebookresearch/barlowtwins (``main.py``).

    Deviations from the reference code:
    - Each embedding is standardised by its batch std clamped at 1e-5, where the reference uses an
      affine-free BatchNorm (std = sqrt(var + 1e-5)): equal unless a feature is nearly constant.
    - Weight decay and LARS adaptation apply to every parameter (the reference excludes biases and BN).
    """

    def __init__(self, backbone, feat_dim, views, proj_dims: tuple[int, ...] = (8192, 8192, 8192),
                 lambd: float = 5e-3, channels_last: bool = False) -> None:
        super().__init__(backbone, feat_dim, views, channels_last)
        self.projector = MLP([feat_dim, *proj_dims], norm="batch", bias=False, last_bias=False)
        self.lambd = lambd

    def forward(self, batch: torch.Tensor) -> LossOutput:
        v1, v2 = self.views(batch)
        z1, z2 = self.projector(self.encode(v1)), self.projector(self.encode(v2))
        return LossOutput(barlow_twins(z1.float(), z2.float(), self.lambd, gather=True))


class SwAV(ImageMethod):
    """SwAV (Caron et al., NeurIPS 2020): swapped prediction of Sinkhorn-Knopp codes over learnable
    prototypes, multi-crop (2 large + N small views; codes come from the large ones), optional queue
    of past large-crop embeddings, prototypes frozen for the first epoch(s).

    Reference code: facebookresearch/swav (``main_swav.py``).

    Deviations from the reference code:
    - Prototypes are renormalised after every optimizer step and at construction (the reference does
      it before every forward): every forward sees unit prototypes, and ``forward`` changes no state.
    - Sinkhorn subtracts the global max score before ``exp`` (cancels in the normalisation; avoids
      overflow at epsilon 0.05) and runs in float32.
    - The prototypes freeze for ``freeze_prototypes_epochs`` epochs (the reference counts iterations,
      ``freeze_prototypes_niters``).
    - Queue embeddings are staged per micro-batch and pushed once per optimizer step, gathered over
      processes (the reference shifts its per-GPU queue inside the forward loop).
    """

    def __init__(self, backbone, feat_dim, views, num_large: int = 2, proj_hidden: int = 2048,
                 proj_dim: int = 128, num_prototypes: int = 3000, temperature: float = 0.1, epsilon: float = 0.05,
                 sinkhorn_iterations: int = 3, freeze_prototypes_epochs: int = 1, queue_size: int = 0,
                 queue_start_epoch: int = 15, channels_last: bool = False) -> None:
        super().__init__(backbone, feat_dim, views, channels_last)
        self.num_large = num_large
        self.projector = MLP([feat_dim, proj_hidden, proj_dim], norm="batch")
        self.prototypes = nn.Linear(proj_dim, num_prototypes, bias=False)
        self.temperature, self.epsilon, self.iterations = temperature, epsilon, sinkhorn_iterations
        self.freeze_epochs, self.queue_start_epoch = freeze_prototypes_epochs, queue_start_epoch
        self.queues = nn.ModuleList(FeatureQueue(queue_size, proj_dim) for _ in range(num_large)) if queue_size \
            else None
        self.register_buffer("epoch", torch.zeros((), dtype=torch.long))
        self._normalize_prototypes()

    @torch.no_grad()
    def _normalize_prototypes(self) -> None:
        """Prototypes live on the unit sphere (the reference normalises them before every forward)."""
        self.prototypes.weight.copy_(F.normalize(self.prototypes.weight, dim=1))

    def forward(self, batch: torch.Tensor) -> LossOutput:
        crops = self.views(batch)
        b = batch.shape[0]
        large = torch.cat(crops[: self.num_large])
        z = [F.normalize(self.projector(self.encode(large)), dim=-1)]
        if len(crops) > self.num_large:  # small crops: one forward at their own resolution
            z.append(F.normalize(self.projector(self.encode(torch.cat(crops[self.num_large:]))), dim=-1))
        z = torch.cat(z)  # (V*B, D)
        scores = self.prototypes(z)  # (V*B, K)
        n_views = len(crops)
        loss = 0.0
        use_queue = self.queues is not None and int(self.epoch) >= self.queue_start_epoch
        for i in range(self.num_large):
            with torch.no_grad():
                s = scores[i * b:(i + 1) * b].detach().float()
                if use_queue and len(self.queues[i]) == self.queues[i].size:
                    s = torch.cat([self.prototypes(self.queues[i].keys().to(z.dtype)).float(), s])
                q = sinkhorn_knopp(s, self.epsilon, self.iterations)[-b:]  # (B, K) codes
            sub = 0.0
            for v in range(n_views):
                if v != i:
                    logp = F.log_softmax(scores[v * b:(v + 1) * b].float() / self.temperature, dim=1)
                    sub = sub - (q * logp).sum(1).mean()
            loss = loss + sub / (n_views - 1)
        if self.queues is not None:
            for i in range(self.num_large):
                self.queues[i].stage(z[i * b:(i + 1) * b])
        return LossOutput(loss / self.num_large)

    def before_step(self, progress: Progress) -> None:
        if progress.epoch < self.freeze_epochs:
            self.prototypes.weight.grad = None

    @torch.no_grad()
    def after_step(self, progress: Progress) -> None:
        self._normalize_prototypes()  # before the next forward, as the reference
        self.epoch.fill_(progress.epoch)
