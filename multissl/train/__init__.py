"""The one training loop (accelerate), its config, schedules, checkpoints and logs."""

from multissl.train.config import TrainConfig

__all__ = ["TrainConfig"]
