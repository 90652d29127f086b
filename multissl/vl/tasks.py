"""The vision-language recipe kinds, one per paper: ``vl.clip`` (CLIP-style ITC), ``vl.albef`` and
``vl.tcl``, each with only its own method settings; retrieval (R@1/5/10 both ways) on the validation
split selects checkpoints and the test split is reported at the end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from multissl.config import param
from multissl.data import SequenceDataset
from multissl.errors import DataError
from multissl.tasks import Task, TaskParts


@dataclass
class VLData:
    path: str = param("flickr8k-mini/captions.jsonl", "caption file / folder: captions.jsonl, COCO captions_*.json, "
                      "Karpathy dataset_*.json, CSV/TSV (image,caption[,split]) or WebDataset .tar shards")
    image_root: str | None = param(None, "folder the image paths are relative to (default: the caption file's folder)")
    train_split: str = param("train", "split used for training")
    val_split: str = param("val", "split used for checkpoint selection")
    test_split: str = param("test", "split reported at the end")
    image_size: int = param(224, "training / evaluation resolution (ALBEF fine-tuning: 384; pre-training: 256)")
    sampling: Literal["image", "pair"] = param("image", "'image': one random caption per image per epoch (no image "
                                               "twice in a batch); 'pair': every pair an item (ALBEF)")
    crop_scale_min: float = param(0.5, "RandomResizedCrop lower scale (ALBEF: 0.5)")
    randaugment: bool = param(True, "RandAugment(2, 7) as ALBEF")
    max_length: int = param(30, "caption tokens (ALBEF retrieval: 30)")


@dataclass
class VLModel:
    image_tower: str = param("timm:resnet18", "timm:<name> | open_clip:<config> | torchvision:<name> | hf:<hub id or "
                                              "folder> (transformers AutoModel)")
    image_pretrained: bool | str = param("", "image weights: timm true/false; open_clip a tag ('openai') or a local "
                                              "checkpoint file; hf: true (default) / false = random init; "
                                              "torchvision: a local state-dict file")
    text_tower: str = param("minilm", "Hugging Face encoder: hub id / folder ('minilm' = the offline all-MiniLM-L6-v2)")
    text_pooling: str = param("cls", "ITC text feature: 'cls' ([CLS], ALBEF) or 'mean'")
    text_layers: int = param(3, "ALBEF/TCL: layers kept as the text encoder; the rest become fusion layers (ALBEF: 6 of 12)")
    extra_fusion_layers: int = param(0, "ALBEF/TCL: fresh fusion layers appended (copies of the last layer)")
    embed_dim: int = param(256, "ITC projection size (ALBEF: 256)")
    freeze_text: bool = param(False, "lock the text encoder (LiT-style; ALBEF/TCL fine-tune it: false)")


@dataclass
class ITCParams:
    temperature: float = param(0.07, "initial temperature (ALBEF / CLIP: 0.07)")
    temperature_min: float = param(0.001, "temperature clamp low (ALBEF: 0.001; CLIP: 0.01)")
    temperature_max: float = param(0.5, "temperature clamp high (ALBEF: 0.5)")
    temperature_param: Literal["raw", "log_inverse"] = param("raw", "learn T (ALBEF) or log(1/T) (CLIP logit scale)")
    learn_temperature: bool = param(True, "learnable temperature")


@dataclass
class CLIPParams(ITCParams):
    itc_loss: Literal["multissl", "open_clip"] = param("multissl", "ITC loss: multissl info_nce or open_clip's ClipLoss")


@dataclass
class ALBEFParams(ITCParams):
    momentum_distill: bool = param(True, "momentum encoders + queues + soft targets; false = the paper's ablation "
                                         "(in-batch ITC, hard MLM labels)")
    itm: bool = param(True, "image-text matching with hard negatives")
    mlm: bool = param(True, "masked language modelling on the fusion encoder")
    momentum: float = param(0.995, "EMA momentum of the momentum encoders (ALBEF: 0.995)")
    queue_size: int = param(65536, "image / text feature queue length (ALBEF: 65,536; use less on small data)")
    alpha: float = param(0.4, "momentum-distillation weight (ALBEF: 0.4)")
    alpha_warmup_epochs: float = param(1.0, "alpha ramps from 0 over this many epochs (ALBEF: 1)")
    mlm_probability: float = param(0.15, "MLM masking rate (BERT / ALBEF: 0.15; 80/10/10)")
    itm_weight: float = param(1.0, "weight of the ITM loss (ALBEF: 1)")
    mlm_weight: float = param(1.0, "weight of the MLM loss (ALBEF: 1)")


@dataclass
class TCLParams(ALBEFParams):
    intra: bool = param(True, "intra-modal contrast (two image views, text dropout views); false = ablation")
    local: bool = param(True, "local mutual information (global vs local tokens); false = ablation")


@dataclass
class VLEval:
    rerank_k: int = param(16, "re-rank each query's ITC top-k by ITM at test time (ALBEF: 128/256; 0 = off)")
    val_rerank_k: int = param(0, "the same for periodic validation (0 = ITC only, cheaper)")
    batch_size: int = param(128, "evaluation batch size")
    examples_png: bool = param(True, "write plots/retrieval_examples.png after training")


@dataclass
class CLIPConfig:
    data: VLData = param(VLData(), "image-caption data")
    model: VLModel = param(VLModel(), "towers")
    method: CLIPParams = param(CLIPParams(), "CLIP-style ITC settings")
    eval: VLEval = param(VLEval(), "retrieval evaluation")


@dataclass
class ALBEFConfig(CLIPConfig):
    method: ALBEFParams = param(ALBEFParams(), "ALBEF loss terms and their settings")


@dataclass
class TCLConfig(CLIPConfig):
    method: TCLParams = param(TCLParams(), "TCL loss terms and their settings")


def build_tower(mo: VLModel, image_size: int):
    """The image tower of a recipe, its pretrained setting read per library."""
    from multissl.vl.models import ImageTower

    return ImageTower(mo.image_tower, image_size, mo.image_pretrained)


def build_method(cfg: CLIPConfig):
    """The method a recipe names (its config's method section decides the class), towers built from names."""
    from dataclasses import asdict

    from multissl.encoders.hf import HFEncoder
    from multissl.vl.methods import ALBEF, CLIP, TCL

    mo = cfg.model
    tower = build_tower(mo, cfg.data.image_size)
    text = HFEncoder(mo.text_tower, pooling="mean", max_length=cfg.data.max_length)
    common = {"embed_dim": mo.embed_dim, "text_pooling": mo.text_pooling, "freeze_text": mo.freeze_text}
    params = asdict(cfg.method)
    if isinstance(cfg.method, CLIPParams):
        return CLIP(tower, text, **common, **params)
    fusion = {"text_layers": mo.text_layers, "extra_fusion_layers": mo.extra_fusion_layers}
    cls = TCL if isinstance(cfg.method, TCLParams) else ALBEF
    return cls(tower, text, **common, **fusion, **params)


def load_split(cfg: CLIPConfig, split: str):
    """(uint8 images (N,3,S,S), captions) of one split."""
    from multissl.vl.data import load_captions, load_images

    data = load_captions(cfg.data.path, cfg.data.image_root)
    part = data.subset(split)
    if len(part) == 0:
        found = sorted(set(data.split))
        raise DataError(f"{cfg.data.path}: no images in split '{split}' (splits found: {found}); "
                        "set data.train_split / val_split / test_split")
    return load_images(part.images, cfg.data.image_size), part.captions


class VLPretrainTask(Task):
    """Image-text pre-training with retrieval on the validation split for selection and the test split
    at the end; subclasses name the method through their config."""

    config_class = ALBEFConfig
    description = "image-text pre-training with retrieval evaluation"

    def build(self, recipe) -> TaskParts:
        from multissl.vl.data import PairCollate, PairDataset
        from multissl.vl.retrieval import evaluate_retrieval, retrieval_examples

        cfg: CLIPConfig = recipe.config
        method = build_method(cfg)
        tr_img, tr_caps = load_split(cfg, cfg.data.train_split)
        va_img, va_caps = load_split(cfg, cfg.data.val_split)
        train = PairDataset(tr_img, tr_caps, cfg.data.sampling)
        tok = method.text
        collate = PairCollate(lambda texts: tok.tokenize(texts, cfg.data.max_length), cfg.data.image_size,
                              two_views=getattr(cfg.method, "intra", False), scale_min=cfg.data.crop_scale_min,
                              randaugment=cfg.data.randaugment)
        ev = cfg.eval
        test_cache: dict[str, object] = {}

        def evaluate(meth) -> dict[str, float]:
            return evaluate_retrieval(meth, va_img, va_caps, ev.val_rerank_k, ev.batch_size, prefix="val/")

        def final(meth) -> dict[str, float]:
            if "test" not in test_cache:
                test_cache["test"] = load_split(cfg, cfg.data.test_split)
            te_img, te_caps = test_cache["test"]
            out = evaluate(meth)
            out.update(evaluate_retrieval(meth, te_img, te_caps, 0, ev.batch_size, prefix="test/itc/"))
            if ev.rerank_k > 0 and getattr(meth, "itm_head", None) is not None:
                out.update(evaluate_retrieval(meth, te_img, te_caps, ev.rerank_k, ev.batch_size, prefix="test/"))
            else:
                out.update({k.replace("test/itc/", "test/"): v for k, v in out.items() if k.startswith("test/itc/")})
            return out

        def export(meth, folder) -> None:
            folder.mkdir(parents=True, exist_ok=True)
            if ev.examples_png and "test" in test_cache:
                plots = folder.parent / "plots"
                plots.mkdir(exist_ok=True)
                te_img, te_caps = test_cache["test"]
                retrieval_examples(meth, te_img, te_caps, str(plots / "retrieval_examples.png"))

        return TaskParts(method, train, collate_fn=collate, evaluate=evaluate, final_evaluate=final, export=export)

    def embed_data(self, recipe, path: str):
        from multissl.vl.data import load_captions

        cfg = recipe.config
        data = load_captions(path, cfg.data.image_root)
        from multissl.encoders.hf import load_tokenizer

        tok = load_tokenizer(cfg.model.text_tower)
        texts = [c for caps in data.captions for c in caps]

        def collate(batch: list[str]) -> dict:
            return dict(tok(batch, padding=True, truncation=True, max_length=cfg.data.max_length, return_tensors="pt"))

        return SequenceDataset(texts), collate



class CLIPTask(VLPretrainTask):
    config_class = CLIPConfig
    description = "CLIP-style image-text contrast (Radford et al. 2021) with retrieval evaluation"


class ALBEFTask(VLPretrainTask):
    config_class = ALBEFConfig
    description = "ALBEF (Li et al. 2021): ITC with momentum distillation, ITM, MLM; retrieval evaluation"


class TCLTask(VLPretrainTask):
    config_class = TCLConfig
    description = "TCL (Yang et al. 2022): ALBEF + intra-modal contrast + local MI; retrieval evaluation"
