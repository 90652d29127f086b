"""Recipe kinds ``code.cocosoda`` (CoCoSoDa pre-training, Shi et al. ICSE 2023) and ``code.finetune``
(the in-batch query -> code fine-tuning stage, best epoch by validation MRR).

Both read (query, code) pairs from ``data.path`` (shipped: ``codesearch`` = ``data/codesearch``, mined
from this machine's Python source; or a CodeSearchNet / CodeXGLUE folder) and validate by MRR of the
validation queries against the whole validation code base; the final evaluation ranks the test code
base. The run's ``export/`` folder is a transformers + sentence-transformers model (chain the stages
with ``model.name_or_path=<cocosoda run>/export``).
"""

from __future__ import annotations

import logging
import random
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from multissl.code.augment import AUGMENTATIONS, tokenize_code
from multissl.code.data import (
    PairDataset,
    RetrievalSet,
    code_of,
    load_pairs,
    load_retrieval,
    read_records,
)
from multissl.code.evaluate import evaluate_retrieval
from multissl.code.heldout import check_heldout, load_heldout
from multissl.code.methods import CoCoSoDa, CodeSearchFineTune
from multissl.code.querystyle import STYLES, QueryRewriter
from multissl.config import param
from multissl.core.momentum import interpolate_weights
from multissl.encoders.hf import HFEncoder
from multissl.encoders.masking import special_tokens_mask
from multissl.tasks import Task, TaskParts

log = logging.getLogger(__name__)


@dataclass
class CodeSearchData:
    path: str = param("codesearch", "folder with train/valid/test jsonl[.gz] (shipped 'codesearch'), or 'hf:code_search_net:python'")
    train_split: str = param("train", "training split file name")
    valid_split: str = param("valid", "validation split (queries vs its whole code base)")
    test_split: str = param("test", "test split (queries vs its whole code base)")
    codebase: str | None = param(None, "separate code base file for valid/test (CodeXGLUE codebase.jsonl); auto-found in the folder")
    max_train_pairs: int | None = param(None, "use a random sample of N training pairs (a slice for quick runs)")
    sample_seed: int = param(0, "seed of that sample (fixed across training seeds)")
    max_valid_codebase: int | None = param(None, "cut the validation code base to its first N codes (speed)")
    max_test_codebase: int | None = param(None, "cut the test code base to its first N codes (speed)")
    code_length: int = param(256, "max code subwords (official: 256)")
    query_length: int = param(128, "max query subwords (official: 128)")
    eval_code_length: int | None = param(None, "max code subwords when evaluating (None = code_length)")
    final_test: bool = param(True, "rank the test code base after training (false for an intermediate stage)")
    heldout: list[str] = param([], "held-out check sets (e.g. code-cosqa) whose queries and functions must not be in the training pairs")
    heldout_overlap: Literal["error", "drop"] = param("error", "on overlap with data.heldout: refuse to train, or drop those training pairs")
    query_styles: list[str] = param(["docstring"], "training-query styles: docstring (as mined), web (keyword-search rewrite), identifier (function name)")
    query_rewrite_rate: float = param(0.0, "probability that a training query is replaced by a rewrite in one of the non-docstring styles")
    extra_train: list[str] = param([], "more training sets whose train split is added whole to data.path's (after max_train_pairs), e.g. code-conala: real Stack Overflow question titles")


@dataclass
class EncoderParams:
    name_or_path: str = param("minilm", "'minilm' (offline all-MiniLM-L6-v2), a folder (e.g. a run's export/) or a hub id")
    pooling: Literal["mean", "cls", "cls_before_pooler", "max"] = param("mean", "pooling (official CoCoSoDa: mean over non-pad tokens)")


@dataclass
class CoCoSoDaParams:
    queue_size: int = param(1024, "size of each of the 4 queues (official moco_k 1024)")
    momentum: float = param(0.999, "momentum of the key encoder (official moco_m 0.999)")
    temperature: float = param(0.07, "temperature (official moco_t 0.07)")
    paper_compat_scale: bool = param(True, "official scale: cos / temperature * compat_multiplier (20/0.07 ~ 286); false: cos / temperature")
    compat_multiplier: float = param(20.0, "the official loss multiplier applied after / temperature")
    mask_rate: float = param(0.1, "share of tokens each augmentation touches (official mlm_probability 0.1)")
    augmentations: list[str] = param(list(AUGMENTATIONS), f"soft augmentations to draw from: {', '.join(AUGMENTATIONS)}")
    aug_schedule: Literal["random", "cycle"] = param("random", "draw one augmentation per step ('random'), or the official step % 4 cycle")
    intra_modal: bool = param(False, "add code->aug code and query->aug query losses (off in the official pre-training)")


@dataclass
class FineTuneParams:
    temperature: float = param(0.05, "in-batch InfoNCE temperature (official: cosine * 20)")
    symmetric: bool = param(False, "also code -> query (official: query -> code only)")
    wise_alpha: float = param(1.0, "WiSE-FT (Wortsman et al., CVPR 2022): evaluate and export alpha * fine-tuned + (1 - alpha) * starting weights; 1.0 = plain fine-tuning")


@dataclass
class RetrievalEval:
    batch_size: int = param(64, "encoding batch size (official eval_batch_size 64)")
    mrr_cutoff: int = param(1000, "ranks beyond this count 0 in MRR (official: 1000)")
    ks: list[int] = param([1, 5, 10], "R@k cut-offs")


@dataclass
class CoCoSoDaConfig:
    data: CodeSearchData = param(CodeSearchData(), "pairs and retrieval splits")
    model: EncoderParams = param(EncoderParams(), "the shared code/query encoder")
    method: CoCoSoDaParams = param(CoCoSoDaParams(), "CoCoSoDa settings")
    eval: RetrievalEval = param(RetrievalEval(), "MRR / R@k evaluation")

    def validate(self) -> None:
        bad = [a for a in self.method.augmentations if a not in AUGMENTATIONS]
        if bad or not self.method.augmentations:
            raise ValueError(f"method.augmentations: unknown {bad}; choose from {list(AUGMENTATIONS)}")
        if not 0 < self.method.mask_rate <= 1:
            raise ValueError("method.mask_rate must be in (0, 1]")


@dataclass
class FineTuneConfig:
    data: CodeSearchData = param(CodeSearchData(), "pairs and retrieval splits")
    model: EncoderParams = param(EncoderParams(), "the shared code/query encoder")
    method: FineTuneParams = param(FineTuneParams(), "fine-tuning loss")
    eval: RetrievalEval = param(RetrievalEval(), "MRR / R@k evaluation")

    def validate(self) -> None:
        if not 0 <= self.method.wise_alpha <= 1:
            raise ValueError("method.wise_alpha must be in [0, 1]")
        if not 0 <= self.data.query_rewrite_rate <= 1:
            raise ValueError("data.query_rewrite_rate must be in [0, 1]")
        bad = [s for s in self.data.query_styles if s not in STYLES]
        if bad:
            raise ValueError(f"data.query_styles: unknown {bad}; choose from {list(STYLES)}")


class CodeSearchCollator:
    """(query, code) pairs -> a dict of padded ids, masks, special masks and code lexical types."""

    def __init__(self, tokenizer, code_length: int = 256, query_length: int = 128, with_types: bool = True,
                 rewrite: QueryRewriter | None = None) -> None:
        self.tokenizer, self.code_length, self.query_length, self.with_types = tokenizer, code_length, query_length, with_types
        self.special_ids = list(tokenizer.all_special_ids)
        self.rewrite = rewrite

    def __call__(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        queries, codes = [p[0] for p in pairs], [p[1] for p in pairs]
        if self.rewrite is not None:
            queries = [self.rewrite(q, c) for q, c in zip(queries, codes)]
        if self.with_types:
            c = tokenize_code(self.tokenizer, codes, self.code_length)
        else:
            c = dict(self.tokenizer(codes, padding=True, truncation=True, max_length=self.code_length, return_tensors="pt"))
        q = self.tokenizer(queries, padding=True, truncation=True, max_length=self.query_length, return_tensors="pt")
        out = {"code_input_ids": c["input_ids"], "code_attention_mask": c["attention_mask"],
               "query_input_ids": q["input_ids"], "query_attention_mask": q["attention_mask"]}
        if self.with_types:
            out["code_token_types"] = c["token_types"]
        out["code_special_mask"] = special_tokens_mask(out["code_input_ids"], self.special_ids) | (out["code_attention_mask"] == 0)
        out["query_special_mask"] = special_tokens_mask(out["query_input_ids"], self.special_ids) | (out["query_attention_mask"] == 0)
        return out


class _CodeSearchTask(Task):
    with_types = False

    def make_method(self, cfg, encoder: HFEncoder):  # pragma: no cover - abstract
        raise NotImplementedError

    def build(self, recipe) -> TaskParts:
        cfg = recipe.config
        d, e = cfg.data, cfg.eval
        encoder = HFEncoder(cfg.model.name_or_path, pooling=cfg.model.pooling, max_length=d.code_length)
        method = self.make_method(cfg, encoder)
        heldout = [load_heldout(h) for h in d.heldout]  # read once, checked against every training set

        def training_pairs(source: str) -> list[tuple[str, str]]:
            found = load_pairs(source, d.train_split)
            if not heldout:
                return found
            kept, overlap = check_heldout(found, heldout, d.heldout_overlap)
            if any(overlap.values()):
                log.info("dropped %s pairs of %s that overlap the held-out sets", overlap, source)
            return kept

        pairs = training_pairs(d.path)
        if d.max_train_pairs and d.max_train_pairs < len(pairs):
            pairs = random.Random(d.sample_seed).sample(pairs, d.max_train_pairs)
        for extra in d.extra_train:
            more = training_pairs(extra)
            log.info("training pairs: %d from %s + %d from %s", len(pairs), d.path, len(more), extra)
            pairs = pairs + more
        valid = load_retrieval(d.path, d.valid_split, d.codebase).slice_codebase(d.max_valid_codebase)
        alpha = float(getattr(cfg.method, "wise_alpha", 1.0))
        start = {k: v.detach().clone() for k, v in encoder.model.state_dict().items()} if alpha < 1 else None

        @contextmanager
        def served_weights(meth):
            """The weights evaluated and exported: WiSE-FT's interpolation with the start when alpha < 1."""
            if start is None:
                yield
                return
            current = {k: v.detach().clone() for k, v in meth.encoder.model.state_dict().items()}
            meth.encoder.model.load_state_dict(interpolate_weights(start, current, alpha))
            try:
                yield
            finally:
                meth.encoder.model.load_state_dict(current)

        def run_eval(meth, rset: RetrievalSet, prefix: str) -> dict[str, float]:
            device = next(meth.parameters()).device
            return evaluate_retrieval(meth.encoder.tokenizer, meth.embed, rset, code_length=d.eval_code_length or d.code_length,
                                      query_length=d.query_length, batch_size=e.batch_size, ks=tuple(e.ks),
                                      mrr_cutoff=e.mrr_cutoff, prefix=prefix, device=device)

        def evaluate(meth) -> dict[str, float]:
            with served_weights(meth):
                return run_eval(meth, valid, "val/")

        def final(meth) -> dict[str, float]:
            if not d.final_test:
                return evaluate(meth)
            test = load_retrieval(d.path, d.test_split, d.codebase).slice_codebase(d.max_test_codebase)
            with served_weights(meth):
                return {**run_eval(meth, valid, "val/"), **run_eval(meth, test, "test/")}

        def export(meth, path: Path) -> None:
            with served_weights(meth):
                meth.encoder.save_pretrained(path, normalize=True)

        rewrite = (QueryRewriter(list(d.query_styles), d.query_rewrite_rate, seed=d.sample_seed)
                   if d.query_rewrite_rate > 0 else None)
        collate = CodeSearchCollator(method.encoder.tokenizer, d.code_length, d.query_length, self.with_types, rewrite)
        return TaskParts(method, PairDataset(pairs), collate_fn=collate, evaluate=evaluate, final_evaluate=final,
                         export=export)

    def embed_data(self, recipe, path: str):
        """Embed the code of every record of a jsonl file (``multissl embed``)."""
        recs = read_records(path)
        codes = [code_of(r) for r in (recs if isinstance(recs, list) else [{"code": k} for k in recs])]
        encoder = HFEncoder(recipe.config.model.name_or_path, pooling=recipe.config.model.pooling)
        length = recipe.config.data.code_length

        def collate(batch: list[str]) -> dict[str, torch.Tensor]:
            enc = encoder.tokenizer(batch, padding=True, truncation=True, max_length=length, return_tensors="pt")
            return {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}

        return codes, collate


class CoCoSoDaTask(_CodeSearchTask):
    config_class = CoCoSoDaConfig
    description = "CoCoSoDa momentum contrastive code search with soft data augmentation"
    with_types = True

    def make_method(self, cfg: CoCoSoDaConfig, encoder: HFEncoder) -> CoCoSoDa:
        m = cfg.method
        return CoCoSoDa(encoder, queue_size=m.queue_size, momentum=m.momentum, temperature=m.temperature,
                        paper_compat_scale=m.paper_compat_scale, compat_multiplier=m.compat_multiplier,
                        mask_rate=m.mask_rate, augmentations=tuple(m.augmentations), aug_schedule=m.aug_schedule,
                        intra_modal=m.intra_modal)


class FineTuneTask(_CodeSearchTask):
    config_class = FineTuneConfig
    description = "in-batch query -> code fine-tuning (best epoch by validation MRR)"

    def make_method(self, cfg: FineTuneConfig, encoder: HFEncoder) -> CodeSearchFineTune:
        return CodeSearchFineTune(encoder, cfg.method.temperature, cfg.method.symmetric)
