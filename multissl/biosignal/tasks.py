"""The ``biosignal.participant`` recipe kind: participant-level contrastive pre-training of a PPG / ECG
encoder (Abbaspourazad et al., ICLR 2024) with participant-disjoint probe evaluation."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch

from multissl.biosignal.augment import AugmentConfig
from multissl.biosignal.data import (
    MITDB_DS1,
    MITDB_DS2,
    ParticipantPairs,
    Segments,
    load_array_signals,
    load_mitdb,
    load_ppg_bp,
    load_table_signals,
    participant_split,
)
from multissl.biosignal.features import beat_features
from multissl.biosignal.methods import ParticipantContrastive, embed_segments
from multissl.biosignal.models import EfficientNet1d, EncoderConfig
from multissl.biosignal.probes import evaluate_features
from multissl.config import param
from multissl.data import SequenceDataset
from multissl.eval.batchnorm import recalibrate_batchnorm
from multissl.tasks import Task, TaskParts, section_kwargs


@dataclass
class BioData:
    source: Literal["ppg_bp", "mitdb", "table", "arrays"] = param("ppg_bp", "loader: PPG-BP, MIT-BIH, CSV/Parquet, .npz")
    path: str = param("ppg_bp", "shipped short path or any path (full MIT-BIH: the staged mitdb_npz.tar.xz)")
    fs: float = param(64.0, "sampling rate after resampling, Hz (paper: 64 Hz PPG, 128 Hz ECG)")
    seconds: float = param(2.1, "segment length in seconds (paper: 60 s PPG, 30 s ECG)")
    records: list[str] = param([], "MIT-BIH records to read (empty: DS1 + DS2 of the shipped subset or full set)")
    minutes: float | None = param(None, "MIT-BIH: read only the first N minutes of each record")
    min_sqi: float | None = param(None, "PPG-BP: drop segments whose skewness SQI is below this")
    participant_column: str = param("participant", "table: participant column")
    value_columns: list[str] = param(["ppg"], "table: one column per channel")
    time_column: str | None = param(None, "table: column to sort samples by")
    target_columns: list[str] = param([], "table: per-participant regression targets")
    source_fs: float = param(1000.0, "table / arrays: sampling rate of the file, Hz")
    split: Literal["random", "mitdb_ds"] = param("random", "participant split: random, or DS1 -> DS2 (de Chazal 2004)")
    fractions: tuple[float, float, float] = param((0.6, 0.2, 0.2), "random split: train / val / test participants")
    val_participants: int = param(4, "mitdb_ds: DS1 participants held out for validation")
    stratify: str | None = param("hypertension", "random split: stratify by this binary target (None = no)")
    split_seed: int = param(0, "seed of the participant split (fixed across training seeds)")


@dataclass
class BioMethod:
    temperature: float = param(0.04, "InfoNCE temperature (paper: 0.04)")
    momentum: float = param(0.99, "EMA momentum of the target encoder (paper: 0.99)")
    koleo_weight: float = param(0.1, "KoLeo regulariser weight (paper: 0.1)")
    koleo_on: Literal["embedding", "projection"] = param("embedding", "KoLeo on the online embedding or projection")
    proj_dims: list[int] = param([256, 128], "projection MLP after the embedding: hidden..., out (paper: out 128)")
    mask_same_participant: bool = param(True, "mask same-participant off-diagonal pairs out of the negatives")
    ema_in_forward: bool = param(True, "EMA before each forward (paper; runs after the optimizer step); False: before it")
    augment: AugmentConfig = param(AugmentConfig(), "augmentations and their probabilities")


@dataclass
class BioEval:
    targets: list[str] = param([], "participant-level targets to probe (empty: all the data has)")
    segment_labels: list[str] = param([], "segment-level labels to probe (empty: all the data has)")
    ridge_alphas: list[float] = param([0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0], "ridge strengths tried on val")
    logistic_weight_decays: list[float] = param([1e-3, 1e-2, 1e-1, 1.0], "logistic L2 strengths tried on val")
    baselines: bool = param(True, "final evaluation also probes hand-crafted HR/HRV features and the random-init encoder")
    embed_batch_size: int = param(256, "segments per embedding batch")


@dataclass
class BioConfig:
    data: BioData = param(BioData(), "segments, rate, split")
    model: EncoderConfig = param(EncoderConfig(), "1-D EfficientNet encoder")
    method: BioMethod = param(BioMethod(), "participant-level contrastive settings")
    eval: BioEval = param(BioEval(), "participant-level probes")


def load_segments(d: BioData) -> Segments:
    """The recipe's data set as :class:`Segments`."""
    if d.source == "ppg_bp":
        return load_ppg_bp(d.path, d.fs, d.seconds, d.min_sqi)
    if d.source == "mitdb":
        records = d.records or None
        if records is None and d.path.endswith("mitdb_mini.npz"):
            from multissl.biosignal.make_subset import RECORDS

            records = list(RECORDS)
        return load_mitdb(d.path, records, d.fs, d.seconds, d.minutes)
    if d.source == "table":
        return load_table_signals(d.path, d.participant_column, d.value_columns, d.source_fs, d.fs, d.seconds,
                                  d.time_column, tuple(d.target_columns))
    return load_array_signals(d.path, d.source_fs, d.fs, d.seconds)


def split_segments(seg: Segments, d: BioData) -> dict[str, Segments]:
    """Participant-disjoint train / val / test subsets."""
    if d.split == "mitdb_ds":
        names = seg.participants
        ds1 = [i for i, p in enumerate(names) if p in MITDB_DS1]
        ds2 = [i for i, p in enumerate(names) if p in MITDB_DS2 and p != "202"]
        g = torch.Generator().manual_seed(d.split_seed)
        perm = [ds1[i] for i in torch.randperm(len(ds1), generator=g).tolist()]
        va, tr = sorted(perm[: d.val_participants]), sorted(perm[d.val_participants:])
        te = sorted(ds2)
    else:
        strat = seg.targets.get(d.stratify) if d.stratify else None
        tr, va, te = participant_split(len(seg.participants), d.fractions, d.split_seed, strat)
    return {"train": seg.subset(tr), "val": seg.subset(va), "test": seg.subset(te)}


class ParticipantContrastiveTask(Task):
    config_class = BioConfig
    description = "participant-level contrastive PPG/ECG pre-training"

    def build(self, recipe) -> TaskParts:
        cfg: BioConfig = recipe.config
        seg = load_segments(cfg.data)
        splits = split_segments(seg, cfg.data)
        encoder = EfficientNet1d(seg.x.shape[1], cfg.model)
        random_init = copy.deepcopy(encoder)  # the random-init baseline: same weights before training
        m = cfg.method
        method = ParticipantContrastive(encoder, **section_kwargs(m))
        targets = cfg.eval.targets or list(seg.targets)
        labels = cfg.eval.segment_labels or list(seg.segment_labels)
        kw = dict(targets=targets, kinds=seg.target_kinds, segment_labels=labels,
                  alphas=tuple(cfg.eval.ridge_alphas), weight_decays=tuple(cfg.eval.logistic_weight_decays))
        eval_rows = torch.cat([splits["train"].rows, splits["val"].rows, splits["test"].rows])

        def features(encoder_) -> torch.Tensor:
            f = torch.full((len(seg), encoder_.embed_dim), float("nan"))
            f[eval_rows] = embed_segments(encoder_, seg.x[eval_rows], cfg.eval.embed_batch_size)
            return f

        def evaluate(meth) -> dict[str, float]:
            return evaluate_features(features(meth.encoder), splits, **kw, with_test=False)

        def final(meth) -> dict[str, float]:
            out = evaluate_features(features(meth.encoder), splits, **kw)
            if cfg.eval.baselines:
                out.update(evaluate_features(beat_features(seg.x, seg.fs), splits, **kw, prefix="handcrafted/"))
                # the floor's batch-norm statistics are estimated on the training segments, as training
                # does for the model: otherwise normalisation alone would count as a gain of pre-training
                device = next(meth.parameters()).device
                train_x = seg.x[splits["train"].rows]
                bs = cfg.eval.embed_batch_size
                floor = recalibrate_batchnorm(random_init.to(device),
                                              (train_x[s : s + bs].to(device) for s in range(0, len(train_x), bs)))
                out.update(evaluate_features(features(floor), splits, **kw, prefix="random_init/"))
            return out

        return TaskParts(method, ParticipantPairs(splits["train"]), evaluate=evaluate, final_evaluate=final)

    def embed_data(self, recipe, path: str):
        d = copy.deepcopy(recipe.config.data)
        d.path = path
        return SequenceDataset(load_segments(d).x), None
