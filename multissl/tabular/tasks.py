"""The ``tabular.scarf`` recipe kind: SCARF pre-training on a table, kNN / linear-probe evaluation."""

from __future__ import annotations

from dataclasses import dataclass

from multissl.config import param
from multissl.data import SequenceDataset
from multissl.eval import frozen_scores
from multissl.tabular.data import load_table, split_indices
from multissl.tabular.methods import ScarfMethod
from multissl.tasks import Task, TaskParts, section_kwargs


@dataclass
class TableData:
    path: str = param("digits/digits.csv.gz", "CSV/.npy/Parquet table (shipped short path or any path)")
    label_column: int = param(-1, "index of the label column (used only for evaluation)")
    splits: tuple[float, float, float] = param((0.6, 0.2, 0.2), "train / val / test fractions")
    split_seed: int = param(0, "seed of the split (fixed across training seeds)")


@dataclass
class ScarfParams:
    hidden: int = param(256, "width of encoder and head (paper: 256)")
    encoder_layers: int = param(4, "encoder depth (paper: 4)")
    head_layers: int = param(2, "pre-training head depth (paper: 2)")
    corruption_rate: float = param(0.6, "fraction of features corrupted per view (paper: 0.6)")
    temperature: float = param(1.0, "InfoNCE temperature (paper: 1.0)")


@dataclass
class ProbeParams:
    knn_k: int = param(20, "neighbours of the weighted kNN probe")
    knn_temperature: float = param(0.1, "kNN vote temperature")


@dataclass
class ScarfConfig:
    data: TableData = param(TableData(), "the table")
    method: ScarfParams = param(ScarfParams(), "SCARF settings")
    eval: ProbeParams = param(ProbeParams(), "frozen-feature probes")


class ScarfTask(Task):
    config_class = ScarfConfig
    description = "SCARF on a feature table"

    def build(self, recipe) -> TaskParts:
        cfg: ScarfConfig = recipe.config
        table = load_table(cfg.data.path, cfg.data.label_column)
        tr, va, te = split_indices(len(table.y), cfg.data.splits, cfg.data.split_seed)
        m = cfg.method
        method = ScarfMethod(table.x[tr], **section_kwargs(m))

        def features(meth, idx):
            return meth.embed(table.x[idx].to(meth.mean.device)).cpu()

        def split(meth, idx):
            return features(meth, idx), table.y[idx]

        def evaluate(meth) -> dict[str, float]:
            return frozen_scores(split(meth, tr), split(meth, va), knn_k=cfg.eval.knn_k,
                                 knn_temperature=cfg.eval.knn_temperature)

        def final(meth) -> dict[str, float]:
            return frozen_scores(split(meth, tr), split(meth, va), split(meth, te), knn_k=cfg.eval.knn_k,
                                 knn_temperature=cfg.eval.knn_temperature)

        return TaskParts(method, SequenceDataset(table.x[tr]), evaluate=evaluate, final_evaluate=final)

    def embed_data(self, recipe, path: str):
        table = load_table(path, recipe.config.data.label_column)
        return SequenceDataset(table.x), None

