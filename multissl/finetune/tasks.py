"""Recipe kinds ``contrastive.pairs`` and ``contrastive.supcon``: fine-tune any Hugging Face model with a
contrastive head on the user's own pairs / triplets or labels, and export it for the ecosystem.

- ``contrastive.pairs`` (text): a table of (anchor, positive[, negatives...]) rows; in-batch + hard
  negatives, optional mined negatives (``data.mine_negatives``), validation by retrieval of the
  validation positives (MRR / R@k) and/or Spearman on a scored-pairs table (STS);
- ``contrastive.supcon`` (text / image / audio): labelled items; SupCon (Khosla et al. 2020) or the
  cross-entropy baseline (``method.loss: ce``); validation by kNN and linear-probe accuracy of the
  validation split with the probes fitted on the training split.

Both export ``export/`` through :func:`multissl.encoders.finetuned.save_finetuned` (a sentence-
transformers + transformers folder for text, a transformers folder + head for vision and audio).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F

from multissl.config import param
from multissl.encoders.auto import AudioEncoder, VisionEncoder, freeze_layers
from multissl.encoders.finetuned import save_finetuned
from multissl.encoders.hf import HFEncoder
from multissl.errors import DataError
from multissl.eval import knn_accuracy, linear_probe, retrieval_metrics, spearman
from multissl.finetune.data import (
    Labelled,
    PairRows,
    load_labelled_files,
    load_labelled_text,
    load_pairs,
    load_scored_pairs,
    split_by_name,
    split_fraction,
)
from multissl.finetune.methods import (
    HEADS,
    CrossEntropyFineTune,
    PairsContrastive,
    SupCon,
)
from multissl.finetune.views import (
    AudioViews,
    ImageViews,
    LabelledCollate,
    PairsCollate,
    prepare_fn,
)
from multissl.tasks import Task, TaskParts

Modality = Literal["text", "image", "audio"]
Head = Literal["none", "linear", "linear_tanh", "mlp"]
assert set(Head.__args__) == set(HEADS)  # type: ignore[attr-defined]


@dataclass
class FTModel:
    name: str = param("minilm", "HF model: a local folder, a hub id, 'minilm' (packaged all-MiniLM-L6-v2), or "
                                "tiny:vit / tiny:convnext / tiny:resnet / tiny:wav2vec2 (small RANDOMLY initialised models)")
    modality: Modality = param("text", "text (AutoTokenizer), image (AutoImageProcessor) or audio (AutoFeatureExtractor)")
    pooling: str | None = param(None, "text: mean/cls/cls_before_pooler/max/last_token; image: auto/cls/mean/pooler; "
                                      "audio: mean. None = mean (text, audio) / auto (image)")
    max_length: int = param(128, "text: max tokens per text (training, evaluation and export)")
    freeze_layers: int = param(0, "freeze the embeddings + bottom N blocks (0 = none, -1 = the whole backbone)")
    lora_r: int = param(0, "LoRA rank (Hu et al. 2022; needs peft): > 0 trains only adapters (+ head), merged at export")
    lora_alpha: int = param(16, "LoRA scaling alpha")
    lora_dropout: float = param(0.0, "dropout on the LoRA inputs")
    lora_targets: list[str] = param(["all-linear"], "module-name suffixes to adapt (e.g. [query, value]) or [all-linear]")
    trust_remote_code: bool = param(False, "let transformers run the model repository's own code (only if you trust it)")


def tiny_model_folder(name: str, seed: int) -> str:
    """``tiny:vit`` / ``tiny:convnext`` / ``tiny:resnet`` / ``tiny:wav2vec2``: a small RANDOMLY initialised
    model folder (:mod:`multissl.encoders.tiny`), written once per (kind, seed) under the system temp folder."""
    import tempfile

    from multissl.encoders.tiny import BUILDERS

    kind = name.split(":", 1)[1]
    if kind not in BUILDERS:
        raise DataError(f"Unknown tiny model '{name}'; choose tiny:{', tiny:'.join(sorted(BUILDERS))}")
    folder = Path(tempfile.gettempdir()) / "multissl-tiny" / f"{kind}-seed{seed}"
    if not (folder / "config.json").exists():
        BUILDERS[kind](folder, seed=seed)
    return str(folder)


def build_encoder(m: FTModel, seed: int = 0):
    """The text / vision / audio encoder of the recipe, with its bottom layers frozen as asked."""
    if m.name.startswith("tiny:"):
        m = dataclasses.replace(m, name=tiny_model_folder(m.name, seed))
    if m.modality == "text":
        enc = HFEncoder(m.name, pooling=m.pooling or "mean", max_length=m.max_length,
                        trust_remote_code=m.trust_remote_code)
    elif m.modality == "image":
        enc = VisionEncoder(m.name, pooling=m.pooling or "auto", trust_remote_code=m.trust_remote_code)
    else:
        enc = AudioEncoder(m.name, pooling=m.pooling or "mean", trust_remote_code=m.trust_remote_code)
    freeze_layers(enc.model, m.freeze_layers)
    if m.lora_r > 0:
        from multissl.encoders.lora import add_lora

        targets = "all-linear" if m.lora_targets == ["all-linear"] else list(m.lora_targets)
        enc.model = add_lora(enc.model, m.lora_r, m.lora_alpha, m.lora_dropout, targets)
    return enc


@torch.no_grad()
def encode_items(method, items: list[Any], batch_size: int = 64, features: str = "head") -> torch.Tensor:
    """(N, D) float CPU embeddings of raw items: ``head`` = the method's embedding, ``backbone`` = pooled encoder."""
    prepare = prepare_fn(method.encoder)
    device = next(method.parameters()).device
    out = []
    for start in range(0, len(items), batch_size):
        inputs = {k: v.to(device) for k, v in prepare(items[start : start + batch_size]).items()}
        z = method.encoder(**inputs) if features == "backbone" else method.embed(inputs)
        out.append(z.float().cpu())
    return torch.cat(out) if out else torch.zeros(0)


def export(method, path: Path) -> None:
    """The run's ``export/`` folder: encoder + head (see :mod:`multissl.encoders.finetuned`)."""
    save_finetuned(method.encoder, method.head, path)


# ---------------------------------------------------------------------------------------- pairs


@dataclass
class PairsData:
    train: str = param("", "training table: .csv/.tsv/.jsonl/.parquet or hf:NAME[:SPLIT]")
    valid: str | None = param(None, "validation table of the same layout (retrieval MRR / R@k of its positives)")
    hf_config: str | None = param(None, "configuration name of an hf: data set (e.g. 'triplet' for all-nli)")
    header: bool = param(True, "the CSV/TSV has a header row; false names the columns 0, 1, 2, ...")
    anchor_column: str = param("anchor", "column of the anchors (queries, premises)")
    positive_column: str = param("positive", "column of the positives")
    negative_columns: list[str] = param([], "columns of given hard negatives (any number, e.g. [negative])")
    id_column: str | None = param(None, "optional id column: rows sharing an id are never each other's negatives")
    score_column: str | None = param(None, "keep only rows whose score in this column is >= min_score")
    min_score: float | None = param(None, "threshold for score_column (e.g. 4.0 on STS-B's 0-5 scale)")
    limit: int | None = param(None, "use only the first N training rows")
    valid_limit: int | None = param(None, "use only the first N validation rows")
    mine_negatives: int = param(0, "mine this many hard negatives per row with the starting model (0 = off)")
    mine_range_min: int = param(0, "skip the closest N candidates (likely unlabelled positives)")
    mine_range_max: int | None = param(None, "consider only the top N candidates")
    mine_margin: float | None = param(None, "keep candidates scoring <= positive score - margin")
    mine_relative_margin: float | None = param(None, "keep candidates scoring <= positive score * (1 - margin)")
    mine_max_score: float | None = param(None, "drop candidates scoring above this cosine")
    mine_sampling: Literal["top", "random"] = param("top", "take the top survivors or random ones")

    def validate(self) -> None:
        if not self.train:
            raise ValueError("data.train is required: a table of pairs (see data.anchor_column / positive_column)")
        if (self.score_column is None) != (self.min_score is None):
            raise ValueError("set data.score_column and data.min_score together")


@dataclass
class PairsParams:
    temperature: float = param(0.05, "InfoNCE temperature (supervised SimCSE: 0.05; sentence-transformers: scale 20)")
    learnable_temperature: bool = param(False, "learn the temperature (CLIP-style log(1/T), clamped to [0.001, 1])")
    symmetric: bool = param(False, "also positive -> anchor over in-batch anchors (averaged)")
    mask_duplicates: bool = param(True, "the same text / id elsewhere in the batch is not a negative")
    gather: bool = param(True, "across processes: local anchors vs the positives / negatives of every process "
                               "(gathered with gradients; duplicates masked over the global batch)")
    gradcache_chunk: int = param(0, "GradCache chunk size (0 = off): same loss and gradients, memory of one chunk")
    head: Head = param("none", "projection head trained with the model: none, linear, linear_tanh (SimCSE's "
                               "Linear + Tanh), mlp (Linear-ReLU-Linear)")
    head_dim: int | None = param(None, "output width of the head (None = the encoder's width)")


@dataclass
class PairsEval:
    batch_size: int = param(128, "texts per evaluation batch")
    ks: list[int] = param([1, 10], "R@k cut-offs of the retrieval validation")
    sts: str | None = param(None, "scored-pairs table for a Spearman validation (STS-B dev: stsb/sts-dev.csv.gz)")
    sts_test: str | None = param(None, "scored-pairs table reported once on the selected weights (test)")
    sts_header: bool = param(False, "the STS tables have a header row (the STS-B release has none)")
    sts_columns: list[str] = param(["5", "6", "4"], "columns sentence1, sentence2, score (STS-B release: 5, 6, 4)")


@dataclass
class PairsConfig:
    data: PairsData = param(PairsData(), "training and validation pairs")
    model: FTModel = param(FTModel(), "the Hugging Face text encoder")
    method: PairsParams = param(PairsParams(), "loss settings")
    eval: PairsEval = param(PairsEval(), "validation")

    def validate(self) -> None:
        if self.model.modality != "text":
            raise ValueError("contrastive.pairs reads texts: model.modality must be 'text' "
                             "(labelled images / audio: use contrastive.supcon)")
        if len(self.eval.sts_columns) != 3:
            raise ValueError("eval.sts_columns must name 3 columns: sentence1, sentence2, score")


def _load_pairs(d: PairsData, source: str, limit: int | None) -> PairRows:
    return load_pairs(source, d.anchor_column, d.positive_column, d.negative_columns, d.id_column, header=d.header,
                      hf_config=d.hf_config, limit=limit, score_column=d.score_column, min_score=d.min_score)


def retrieval_eval(method, rows: PairRows, batch_size: int, ks: list[int], prefix: str) -> dict[str, float]:
    """Each anchor ranks every distinct positive and negative text of the split; relevant = its positives."""
    keys = list(dict.fromkeys(rows.positives + [n for negs in rows.negatives for n in negs]))
    pos = {t: i for i, t in enumerate(keys)}
    anchors = list(dict.fromkeys(rows.anchors))
    relevant: dict[str, set[int]] = {}
    for a, p in zip(rows.anchors, rows.positives, strict=True):
        relevant.setdefault(a, set()).add(pos[p])
    q = encode_items(method, anchors, batch_size)
    k = encode_items(method, keys, batch_size)
    return retrieval_metrics(q, k, [sorted(relevant[a]) for a in anchors], ks=tuple(ks), mrr_cutoff=None,
                             prefix=prefix)


def sts_eval(method, source: str, e: PairsEval, key: str) -> dict[str, float]:
    pairs = load_scored_pairs(source, *e.sts_columns, header=e.sts_header)
    unique = list(dict.fromkeys(pairs.s1 + pairs.s2))
    index = {s: i for i, s in enumerate(unique)}
    emb = encode_items(method, unique, e.batch_size)
    cos = F.cosine_similarity(emb[[index[s] for s in pairs.s1]], emb[[index[s] for s in pairs.s2]], dim=-1)
    return {key: 100.0 * spearman(cos, pairs.scores)}


class PairsTask(Task):
    config_class = PairsConfig
    description = "contrastive fine-tuning on (anchor, positive[, negatives]) pairs"

    def build(self, recipe) -> TaskParts:
        cfg: PairsConfig = recipe.config
        d, m, e = cfg.data, cfg.method, cfg.eval
        encoder = build_encoder(cfg.model, recipe.train.seed)
        method = PairsContrastive(encoder, m.head, m.head_dim, m.temperature, m.learnable_temperature,
                                  m.gradcache_chunk, m.symmetric, m.mask_duplicates, gather=m.gather)
        rows = _load_pairs(d, d.train, d.limit)
        if d.mine_negatives > 0:
            from multissl.finetune.mine import mine_hard_negatives

            rows, stats = mine_hard_negatives(
                rows, lambda texts: encode_items(method, texts, e.batch_size, "backbone"),
                num_negatives=d.mine_negatives, range_min=d.mine_range_min, range_max=d.mine_range_max,
                margin=d.mine_margin, relative_margin=d.mine_relative_margin, max_score=d.mine_max_score,
                sampling=d.mine_sampling, seed=recipe.train.seed)
            print(f"mined negatives: kept {stats.rows_out}/{stats.rows_in} rows, mean positive cosine "
                  f"{stats.mean_positive_score:.3f}, mean negative cosine {stats.mean_negative_score:.3f}")
        if len(rows) < recipe.train.batch_size:
            raise DataError(f"{d.train}: {len(rows)} rows, fewer than one batch of {recipe.train.batch_size}")
        valid = _load_pairs(d, d.valid, d.valid_limit) if d.valid else None

        def evaluate(meth) -> dict[str, float]:
            out: dict[str, float] = {}
            if valid is not None:
                out.update(retrieval_eval(meth, valid, e.batch_size, e.ks, "val/"))
            if e.sts:
                out.update(sts_eval(meth, e.sts, e, "val/sts_spearman"))
            return out

        def final(meth) -> dict[str, float]:
            out = evaluate(meth)
            if e.sts_test:
                out.update(sts_eval(meth, e.sts_test, e, "test/sts_spearman"))
            return out

        return TaskParts(method, rows, collate_fn=PairsCollate(prepare_fn(encoder)), evaluate=evaluate,
                         final_evaluate=final, export=export)

    def embed_data(self, recipe, path: str):
        """Embed the anchor column of a table (``multissl embed``)."""
        cfg: PairsConfig = recipe.config
        from multissl.finetune.data import read_table

        frame = read_table(path, header=cfg.data.header)
        col = cfg.data.anchor_column if cfg.data.anchor_column in frame.columns else str(frame.columns[0])
        texts = [str(t) for t in frame[col].tolist()]
        from multissl.encoders.hf import load_tokenizer

        tok = load_tokenizer(cfg.model.name)
        return texts, lambda batch: dict(tok(batch, padding=True, truncation=True, max_length=cfg.model.max_length,
                                             return_tensors="pt"))


# --------------------------------------------------------------------------------------- supcon


@dataclass
class LabelData:
    train: str = param("", "labelled data: a table (text), or a folder / .tar(.gz) of class folders or named files")
    valid: str | None = param(None, "validation source of the same layout (else valid_match / valid_fraction)")
    test: str | None = param(None, "test source (else test_match); reported once on the selected weights")
    valid_match: str | None = param(None, "regex on file names / row numbers: matching training items form the validation split")
    test_match: str | None = param(None, "regex: matching training items form the test split")
    valid_fraction: float = param(0.0, "hold out this seeded random fraction of training items for validation")
    text_column: str = param("text", "text column of a table")
    label_column: str = param("label", "label column of a table")
    header: bool = param(True, "the CSV/TSV has a header row; false names the columns 0, 1, 2, ...")
    hf_config: str | None = param(None, "configuration name of an hf: data set")
    label_regex: str | None = param(None, "files: label = group 1 of this regex on the file name (default: parent folder)")
    limit: int | None = param(None, "use a seeded random sample of N items of each source (quick runs)")
    sampling_rate: int | None = param(None, "audio: resample to this rate (None = the feature extractor's)")

    def validate(self) -> None:
        if not self.train:
            raise ValueError("data.train is required")
        if not 0 <= self.valid_fraction < 1:
            raise ValueError("data.valid_fraction must be in [0, 1)")


@dataclass
class SupConParams:
    loss: Literal["supcon", "ce"] = param("supcon", "supcon (Khosla et al. 2020) or the cross-entropy baseline")
    temperature: float = param(0.1, "SupCon temperature (Khosla et al.: 0.1)")
    learnable_temperature: bool = param(False, "learn the temperature (clamped to [0.001, 1])")
    views: int = param(2, "augmented views per sample (Khosla et al.: 2)")
    head: Head = param("mlp", "projection head (Khosla et al.: MLP to 128), probed before it by default")
    head_dim: int | None = param(128, "output width of the head")
    gradcache_chunk: int = param(0, "GradCache chunk size (0 = off)")
    gather: bool = param(True, "across processes, score each anchor against every process's views and labels "
                               "(the global batch)")


@dataclass
class Augment:
    crop_scale_min: float = param(0.2, "image: RandomResizedCrop lower scale (SimCLR / SupCon: 0.08-0.2)")
    jitter: float = param(0.4, "image: colour-jitter strength (applied with p = 0.8)")
    grayscale: float = param(0.2, "image: greyscale probability")
    ce_colour: bool = param(False, "cross-entropy baseline: also colour jitter + greyscale (Khosla et al.'s main_ce.py: "
                                   "crop + flip only)")
    crop_seconds: float = param(0.8, "audio: random crop length in seconds (shorter clips stay whole)")
    gain_db: float = param(6.0, "audio: random gain range +- dB")


@dataclass
class ProbeEval:
    batch_size: int = param(64, "items per evaluation batch")
    features: Literal["backbone", "head"] = param("backbone", "probe the pooled backbone (Khosla et al.) or the head output")
    knn_k: int = param(20, "neighbours of the weighted kNN")
    knn_temperature: float = param(0.07, "kNN vote temperature")
    probe_weight_decay: float = param(1e-4, "L2 of the logistic-regression probe")
    probe_train_limit: int | None = param(None, "fit the probes on the first N training items only (speed)")


@dataclass
class SupConConfig:
    data: LabelData = param(LabelData(), "labelled items and their splits")
    model: FTModel = param(FTModel(), "the Hugging Face encoder")
    method: SupConParams = param(SupConParams(), "loss settings")
    augment: Augment = param(Augment(), "views (images and audio; text uses dropout)")
    eval: ProbeEval = param(ProbeEval(), "kNN / linear-probe validation")

    def validate(self) -> None:
        if self.method.views < 1 or (self.method.loss == "supcon" and self.method.views < 2):
            raise ValueError("method.views must be >= 2 for supcon (>= 1 for ce)")


def _load_labelled(cfg: SupConConfig, source: str, classes: list[str] | None, sampling_rate: int) -> Labelled:
    d = cfg.data
    if cfg.model.modality == "text":
        return load_labelled_text(source, d.text_column, d.label_column, header=d.header, hf_config=d.hf_config,
                                  classes=classes, limit=d.limit)
    return load_labelled_files(source, cfg.model.modality, label_regex=d.label_regex, classes=classes,
                               sampling_rate=sampling_rate, limit=d.limit)


def labelled_splits(cfg: SupConConfig, sampling_rate: int = 16000, seed: int = 0):
    """(train, valid, test or None) of the recipe: separate sources, name regexes or a seeded fraction."""
    d = cfg.data
    train = _load_labelled(cfg, d.train, None, sampling_rate)
    train, test = split_by_name(train, d.test_match)
    train, valid = split_by_name(train, d.valid_match)
    if d.test:
        test = _load_labelled(cfg, d.test, train.classes, sampling_rate)
    if d.valid:
        valid = _load_labelled(cfg, d.valid, train.classes, sampling_rate)
    if valid is None and d.valid_fraction > 0:
        train, valid = split_fraction(train, d.valid_fraction, seed)
    if valid is None:
        raise DataError("contrastive.supcon needs a validation split: set data.valid, data.valid_match or "
                        "data.valid_fraction (checkpoints are selected on it, never on test)")
    return train, valid, test


def probe_scores(method, train: Labelled, heldout: Labelled, e: ProbeEval, prefix: str) -> dict[str, float]:
    """kNN and logistic-regression accuracy of ``heldout`` with both fitted on ``train``."""
    fit = train if e.probe_train_limit is None else train.subset(list(range(min(e.probe_train_limit, len(train)))))
    xtr = encode_items(method, fit.items, e.batch_size, e.features)
    xte = encode_items(method, heldout.items, e.batch_size, e.features)
    n_cls = len(train.classes)
    knn = knn_accuracy(xtr, fit.labels, xte, heldout.labels, k=e.knn_k, temperature=e.knn_temperature,
                       num_classes=n_cls)
    lin = linear_probe(xtr, fit.labels, xte, heldout.labels, optimizer="lbfgs", weight_decay=e.probe_weight_decay)
    return {f"{prefix}knn_acc": 100.0 * knn, f"{prefix}linear_acc": 100.0 * float(lin.last_test)}


class SupConTask(Task):
    config_class = SupConConfig
    description = "supervised contrastive (SupCon) or cross-entropy fine-tuning on labelled text / images / audio"

    def build(self, recipe) -> TaskParts:
        cfg: SupConConfig = recipe.config
        m, a, e = cfg.method, cfg.augment, cfg.eval
        encoder = build_encoder(cfg.model, recipe.train.seed)
        rate = cfg.data.sampling_rate or int(getattr(getattr(encoder, "feature_extractor", None), "sampling_rate", 16000))
        train, valid, test = labelled_splits(cfg, rate, recipe.train.seed)
        if m.loss == "supcon":
            method = SupCon(encoder, m.head, m.head_dim, m.temperature, m.learnable_temperature, m.gradcache_chunk,
                            gather=m.gather)
        else:
            method = CrossEntropyFineTune(encoder, len(train.classes), m.head, m.head_dim, m.gradcache_chunk)
        augment = batch_views = None
        if cfg.model.modality == "image":
            batch_views = ImageViews.for_processor(encoder.processor, crop_scale_min=a.crop_scale_min, jitter=a.jitter,
                                                   grayscale=a.grayscale, colour=m.loss == "supcon" or a.ce_colour)
        elif cfg.model.modality == "audio":
            augment = AudioViews(int(a.crop_seconds * rate), a.gain_db)
        collate = LabelledCollate(prepare_fn(encoder), augment, m.views, batch_views)

        def evaluate(meth) -> dict[str, float]:
            return probe_scores(meth, train, valid, e, "val/")

        def final(meth) -> dict[str, float]:
            out = evaluate(meth)
            if test is not None:
                out.update(probe_scores(meth, train, test, e, "test/"))
            return out

        return TaskParts(method, train, collate_fn=collate, evaluate=evaluate, final_evaluate=final, export=export)

    def embed_data(self, recipe, path: str):
        """Embed the texts of a table's text column, or every image / clip of a folder or archive."""
        cfg: SupConConfig = recipe.config
        encoder = build_encoder(cfg.model, recipe.train.seed)
        if cfg.model.modality == "text":
            from multissl.finetune.data import read_table

            frame = read_table(path, header=cfg.data.header)
            if cfg.data.text_column not in frame.columns:
                raise DataError(f"{path}: no column '{cfg.data.text_column}' (have {list(frame.columns)[:20]})")
            items: list[Any] = [str(t) for t in frame[cfg.data.text_column].tolist()]
        else:
            from multissl.finetune.data import (
                AUDIO_SUFFIXES,
                IMAGE_SUFFIXES,
                _labelled_members,
                decode_audio,
                decode_image,
            )

            image = cfg.model.modality == "image"
            rate = cfg.data.sampling_rate or int(getattr(getattr(encoder, "feature_extractor", None), "sampling_rate", 16000))
            members = _labelled_members(path, IMAGE_SUFFIXES if image else AUDIO_SUFFIXES)
            items = [decode_image(d) if image else decode_audio(d, rate) for _, d in members]
        return items, prepare_fn(encoder)
