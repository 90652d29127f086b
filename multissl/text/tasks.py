"""Recipe kinds ``text.simcse``, ``text.esimcse``, ``text.whitenedcse`` and ``text.mlm``.

Each trains on unlabeled sentences, validates on STS-B dev (Spearman x 100, the only split used to pick
checkpoints), reports STS-B test once on the selected weights, and exports a folder that loads with
``AutoModel.from_pretrained`` and ``SentenceTransformer(path)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from multissl.config import param
from multissl.data import SequenceDataset
from multissl.encoders.hf import POOLINGS, HFEncoder, load_tokenizer, resolve_model
from multissl.tasks import Task, TaskParts, section_kwargs
from multissl.text.augment import RepetitionCollate, TokenizeCollate
from multissl.text.data import load_sentences, load_sts_all
from multissl.text.sts import sts_spearman

Pooling = Literal["mean", "cls", "cls_before_pooler", "pooler", "max", "last_token"]
assert set(Pooling.__args__) == set(POOLINGS)  # type: ignore[attr-defined]


@dataclass
class TextData:
    train: str = param("wiki1m/wiki1m_head11913.txt.gz",
                       "training sentences: .txt(.gz) one per line, .csv/.jsonl column, or hf:NAME[:SPLIT[:COLUMN]]")
    column: str | None = param(None, "text column of a .csv/.jsonl/datasets source (default: text/sentence)")
    limit: int | None = param(None, "use only the first N training sentences")
    dev: str = param("stsb/sts-dev.csv.gz", "validation STS set (selects checkpoints): STS-B csv, SentEval, SICK or hf:")
    test: str | None = param("stsb/sts-test.csv", "test STS set, evaluated once on the selected weights")
    eval_max_pairs: int | None = param(None, "evaluate on the first N pairs only (quick checks)")
    eval_batch_size: int = param(128, "sentences per evaluation batch")


@dataclass
class TextModel:
    name: str = param("minilm", "HF encoder: local folder, hub id, or 'minilm' (packaged all-MiniLM-L6-v2)")
    pooling: Pooling = param("cls", "pooling; SimCSE: 'cls' (raw [CLS] = cls_before_pooler at evaluation); "
                                     "'mean' for MiniLM-style models")
    max_length: int = param(32, "training max tokens per sentence (SimCSE: 32)")
    eval_max_length: int = param(128, "max tokens at evaluation (the exported folder keeps the base model's "
                                            "sentence-transformers max_seq_length)")
    dropout: float | None = param(0.1, "hidden + attention dropout of the encoder (SimCSE: 0.1); null keeps the model's")


@dataclass
class SimCSEParams:
    temperature: float = param(0.05, "InfoNCE temperature (SimCSE: 0.05)")
    mlp: Literal["train", "always", "none"] = param("train", "MLP (Linear+Tanh) over the pooled vector: at train "
                                                             "time only (SimCSE unsup), always, or none")
    gradcache_chunk: int = param(0, "GradCache chunk size (0 = off): same loss/gradients, memory of one chunk")


@dataclass
class ESimCSEParams:
    temperature: float = param(0.05, "InfoNCE temperature (ESimCSE: 0.05)")
    mlp: Literal["train", "always", "none"] = param("train", "MLP over the pooled vector (train time only in ESimCSE)")
    dup_rate: float = param(0.32, "word-repetition rate (ESimCSE: 0.32)")
    max_dup: int = param(10, "cap of repeated tokens per sentence (official code: 10)")
    momentum: float = param(0.995, "momentum-encoder EMA coefficient (ESimCSE: 0.995)")
    queue_ratio: float = param(2.5, "queue size as a multiple of the batch per optimizer step (ESimCSE: 2.5, i.e. 160 "
                                    "for 64)")
    gradcache_chunk: int = param(0, "GradCache chunk size (0 = off)")


@dataclass
class WhitenedCSEParams:
    temperature: float = param(0.05, "InfoNCE temperature (WhitenedCSE: 0.05)")
    num_pos: int = param(3, "dropout views per sentence; loss = sum_k CE(z1, z_k) (WhitenedCSE: 3)")
    num_groups: int = param(128, "channel groups of the shuffled group whitening (official code: 128)")
    shuffle: bool = param(True, "random channel permutation before grouping (the 'shuffled' in SGW)")
    eps: float = param(1e-5, "eigenvalue floor of the ZCA whitening")
    detach_whitening: bool = param(False, "stop gradients through the whitening matrix (released code: true; "
                                          "paper: false)")
    gradcache_chunk: int = param(0, "GradCache chunk size (0 = off)")


@dataclass
class MLMModel:
    name: str | None = param(None, "continue pre-training this HF encoder (domain adaptation); null = from scratch")
    tokenizer: str = param("minilm", "tokenizer (and vocabulary) for a model built from scratch")
    hidden_size: int = param(256, "width of the from-scratch BERT")
    num_layers: int = param(4, "layers of the from-scratch BERT")
    num_heads: int = param(4, "attention heads of the from-scratch BERT")
    intermediate_size: int = param(1024, "feed-forward width of the from-scratch BERT")
    dropout: float = param(0.1, "hidden + attention dropout (BERT: 0.1)")
    max_length: int = param(32, "training max tokens per sentence")
    eval_max_length: int = param(128, "max tokens at evaluation (the exported folder keeps the base model's "
                                            "sentence-transformers max_seq_length)")
    pooling: Pooling = param("mean", "pooling of the exported encoder and of the STS validation")


@dataclass
class MLMParams:
    mask_rate: float = param(0.15, "fraction of tokens masked (BERT: 0.15; 80% [MASK] / 10% random / 10% kept)")


@dataclass
class SimCSEConfig:
    data: TextData = param(TextData(), "training sentences and STS evaluation sets")
    model: TextModel = param(TextModel(), "the Hugging Face encoder")
    method: SimCSEParams = param(SimCSEParams(), "unsup-SimCSE settings")


@dataclass
class ESimCSEConfig:
    data: TextData = param(TextData(), "training sentences and STS evaluation sets")
    model: TextModel = param(TextModel(), "the Hugging Face encoder")
    method: ESimCSEParams = param(ESimCSEParams(), "ESimCSE settings")


@dataclass
class WhitenedCSEConfig:
    data: TextData = param(TextData(), "training sentences and STS evaluation sets")
    model: TextModel = param(TextModel(), "the Hugging Face encoder")
    method: WhitenedCSEParams = param(WhitenedCSEParams(), "WhitenedCSE settings")


@dataclass
class MLMConfig:
    data: TextData = param(TextData(), "training sentences and STS evaluation sets")
    model: MLMModel = param(MLMModel(), "the masked language model")
    method: MLMParams = param(MLMParams(), "masking settings")


def build_encoder(m: TextModel) -> HFEncoder:
    """Load the HF encoder with the recipe's dropout and evaluation length."""
    from transformers import AutoConfig, AutoModel

    from multissl.encoders.hf import _load_error

    resolved = resolve_model(m.name)
    try:
        config = AutoConfig.from_pretrained(resolved)
        if m.dropout is not None:
            for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
                if hasattr(config, key):
                    setattr(config, key, m.dropout)
        model = AutoModel.from_pretrained(resolved, config=config)
    except Exception as exc:  # noqa: BLE001 - hub / file errors come in many types
        raise _load_error(m.name, exc) from None
    return HFEncoder(m.name, pooling=m.pooling, max_length=m.eval_max_length, model=model,
                     tokenizer=load_tokenizer(m.name))


def sts_evaluators(data: TextData, eval_max_length: int):
    """(validate, final) functions: STS-B dev for selection, dev + test on the selected weights."""
    dev = load_sts_all(data.dev, "dev").head(data.eval_max_pairs)
    test = load_sts_all(data.test, "test").head(data.eval_max_pairs) if data.test else None

    def score(method, pairs) -> float:
        enc = method.hf_encoder()
        device = next(method.parameters()).device
        return sts_spearman(method.embed, enc.tokenizer, pairs, eval_max_length, data.eval_batch_size, device)

    def evaluate(method) -> dict[str, float]:
        return {"val/stsb_spearman": score(method, dev)}

    def final(method) -> dict[str, float]:
        out = evaluate(method)
        if test is not None:
            out["test/stsb_spearman"] = score(method, test)
        return out

    return evaluate, final


def export_encoder(method, path: Path) -> None:
    """Write the trained encoder as a transformers + sentence-transformers folder."""
    method.hf_encoder().save_pretrained(path)


class _ContrastiveTask(Task):
    def _parts(self, recipe, method, collate) -> TaskParts:
        cfg = recipe.config
        sentences = load_sentences(cfg.data.train, cfg.data.column, cfg.data.limit)
        evaluate, final = sts_evaluators(cfg.data, cfg.model.eval_max_length)
        return TaskParts(method, SequenceDataset(sentences), collate_fn=collate, evaluate=evaluate,
                         final_evaluate=final, export=export_encoder)

    def embed_data(self, recipe, path: str):
        cfg = recipe.config
        tok = load_tokenizer(getattr(cfg.model, "name", None) or cfg.model.tokenizer)
        return SequenceDataset(load_sentences(path, cfg.data.column)), TokenizeCollate(tok, cfg.model.eval_max_length)


class SimCSETask(_ContrastiveTask):
    config_class = SimCSEConfig
    description = "unsupervised SimCSE on any HF encoder"

    def build(self, recipe) -> TaskParts:
        cfg: SimCSEConfig = recipe.config
        enc = build_encoder(cfg.model)
        m = cfg.method
        from multissl.text.methods import SimCSE

        method = SimCSE(enc, **section_kwargs(m))
        return self._parts(recipe, method, TokenizeCollate(enc.tokenizer, cfg.model.max_length))


class ESimCSETask(_ContrastiveTask):
    config_class = ESimCSEConfig
    description = "ESimCSE on any HF encoder"

    def build(self, recipe) -> TaskParts:
        cfg: ESimCSEConfig = recipe.config
        enc = build_encoder(cfg.model)
        m = cfg.method
        from multissl.text.methods import ESimCSE

        # the queue holds queue_ratio optimizer steps of keys (accumulation pushes batch x accum keys a step)
        queue = max(1, int(m.queue_ratio * recipe.train.batch_size * recipe.train.grad_accum_steps))
        method = ESimCSE(enc, temperature=m.temperature, mlp=m.mlp, gradcache_chunk=m.gradcache_chunk,
                         momentum=m.momentum, queue_size=queue)
        collate = RepetitionCollate(enc.tokenizer, cfg.model.max_length, m.dup_rate, m.max_dup)
        return self._parts(recipe, method, collate)


class WhitenedCSETask(_ContrastiveTask):
    config_class = WhitenedCSEConfig
    description = "WhitenedCSE on any HF encoder"

    def build(self, recipe) -> TaskParts:
        cfg: WhitenedCSEConfig = recipe.config
        enc = build_encoder(cfg.model)
        m = cfg.method
        from multissl.text.methods import WhitenedCSE

        method = WhitenedCSE(enc, **section_kwargs(m))
        return self._parts(recipe, method, TokenizeCollate(enc.tokenizer, cfg.model.max_length))


class MLMTask(_ContrastiveTask):
    config_class = MLMConfig
    description = "masked language modelling: a small BERT from scratch, or domain-adaptive pre-training"

    def build(self, recipe) -> TaskParts:
        from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

        cfg: MLMConfig = recipe.config
        m = cfg.model
        if m.name:
            tok = load_tokenizer(m.name)
            model = AutoModelForMaskedLM.from_pretrained(resolve_model(m.name))
        else:
            tok = load_tokenizer(m.tokenizer)
            config = BertConfig(vocab_size=len(tok), hidden_size=m.hidden_size, num_hidden_layers=m.num_layers,
                                num_attention_heads=m.num_heads, intermediate_size=m.intermediate_size,
                                hidden_dropout_prob=m.dropout, attention_probs_dropout_prob=m.dropout,
                                max_position_embeddings=max(512, m.eval_max_length), pad_token_id=tok.pad_token_id)
            model = BertForMaskedLM(config)
        from multissl.text.methods import MaskedLM

        method = MaskedLM(model, tok, cfg.method.mask_rate, m.pooling, m.eval_max_length, base_name=m.name or "")
        sentences = load_sentences(cfg.data.train, cfg.data.column, cfg.data.limit)
        evaluate, final = sts_evaluators(cfg.data, m.eval_max_length)
        return TaskParts(method, SequenceDataset(sentences), collate_fn=TokenizeCollate(tok, m.max_length),
                         evaluate=evaluate, final_evaluate=final, export=export_encoder)
