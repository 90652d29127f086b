"""Modality-free building blocks: losses, momentum encoders, queues, distributed gathers, heads.

Nothing here imports another multissl package: adapters build on ``core``, never the reverse.
"""

from multissl.core.distributed import (
    all_gather_no_grad,
    gather_with_grad,
    rank,
    world_size,
)
from multissl.core.heads import MLP, Temperature
from multissl.core.losses import (
    barlow_twins,
    chamfer_distance,
    dcl,
    info_nce,
    koleo,
    mix_hard_negatives,
    nt_xent,
    scaled_cosine_error,
    sinkhorn_knopp,
    vicreg,
)
from multissl.core.method import (
    LossOutput,
    Method,
    Progress,
    after_optimizer_step,
    before_optimizer_step,
    flush_queues,
)
from multissl.core.momentum import (
    MomentumSchedule,
    ema_update,
    interpolate_weights,
    momentum_copy,
)
from multissl.core.queue import FeatureQueue

__all__ = [
    "MLP", "FeatureQueue", "LossOutput", "Method", "MomentumSchedule", "Progress", "Temperature",
    "after_optimizer_step", "all_gather_no_grad", "barlow_twins", "before_optimizer_step", "chamfer_distance",
    "dcl", "ema_update", "flush_queues", "gather_with_grad", "info_nce", "interpolate_weights", "koleo",
    "mix_hard_negatives",
    "momentum_copy", "nt_xent", "rank", "scaled_cosine_error", "sinkhorn_knopp", "vicreg", "world_size",
]
