"""LoRA (Hu et al., ICLR 2022) on any Hugging Face backbone through ``peft``, merged back for export.

``add_lora(model, r, alpha, dropout, targets)`` freezes the backbone and adds rank-``r`` adapters to
its linear layers (``targets``: module-name suffixes, or ``all-linear``); ``merge_lora(model)``
returns the plain ``transformers`` model with the adapters folded into the weights, so an export
loads with ``AutoModel`` / ``SentenceTransformer`` and no ``peft``. peft is optional
(``pip install multissl[finetune-lora]``).
"""

from __future__ import annotations

from torch import nn

from multissl.errors import MultisslError


def add_lora(model: nn.Module, r: int = 8, alpha: int = 16, dropout: float = 0.0,
             targets: list[str] | str = "all-linear") -> nn.Module:
    """The backbone wrapped with LoRA adapters (only they and no other backbone weight train)."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError:
        raise MultisslError("model.lora_r > 0 needs the `peft` package: pip install 'multissl[finetune-lora]'") from None
    config = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=targets, bias="none")
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise MultisslError(f"LoRA: {exc}. Set model.lora_targets to the names of linear layers "
                            "(e.g. [query, value])") from None


def merge_lora(model: nn.Module) -> nn.Module:
    """A copy-free merge: the adapters folded into the base weights; a non-LoRA model is returned as is."""
    if hasattr(model, "merge_and_unload"):
        return model.merge_and_unload()
    return model


def is_lora(model: nn.Module) -> bool:
    return hasattr(model, "merge_and_unload") and hasattr(model, "peft_config")
