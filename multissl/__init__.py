"""multissl: self-supervised and contrastive representation learning across modalities.

Heavy packages (torch, transformers, ...) are imported lazily by the submodules that need them,
so ``import multissl`` and ``multissl --help`` stay fast.
"""

__version__ = "0.1.0"

from multissl.errors import MultisslError  # noqa: E402

__all__ = ["MultisslError", "__version__"]
