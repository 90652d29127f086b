"""Small randomly initialised vision / audio Hugging Face models, saved as ordinary model folders.

No pretrained image or audio weights are reachable offline, so tests and the CPU figures build a
tiny ViT / ConvNeXt / ResNet / wav2vec2 from a transformers config and ``save_pretrained`` it (with its image
processor or feature extractor); every loader then treats the folder like a hub model. Figures made
from these folders measure fine-tuning from random initialisation, never a pretrained checkpoint.

``python -m multissl.encoders.tiny vit OUT_DIR`` (or ``convnext``, ``resnet``, ``wav2vec2``) writes one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def tiny_vit(path: str | Path, image_size: int = 32, patch_size: int = 4, hidden_size: int = 64,
             num_layers: int = 2, num_heads: int = 4, seed: int = 0) -> Path:
    """A ViT (Dosovitskiy et al. 2021) with ``num_layers`` blocks and its ``ViTImageProcessor``."""
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    torch.manual_seed(seed)
    config = ViTConfig(image_size=image_size, patch_size=patch_size, hidden_size=hidden_size,
                       num_hidden_layers=num_layers, num_attention_heads=num_heads,
                       intermediate_size=4 * hidden_size)
    model = ViTModel(config)
    processor = ViTImageProcessor(size={"height": image_size, "width": image_size}, do_resize=True,
                                  image_mean=[0.4914, 0.4822, 0.4465], image_std=[0.247, 0.243, 0.261])
    return _save(path, model, processor)


def tiny_convnext(path: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """A two-stage ConvNeXt (Liu et al. 2022) with its image processor."""
    from transformers import ConvNextConfig, ConvNextImageProcessor, ConvNextModel

    torch.manual_seed(seed)
    config = ConvNextConfig(num_stages=2, hidden_sizes=[32, 64], depths=[1, 1], patch_size=2, image_size=image_size)
    model = ConvNextModel(config)
    processor = ConvNextImageProcessor(size={"shortest_edge": image_size}, crop_pct=1.0,
                                       image_mean=[0.4914, 0.4822, 0.4465], image_std=[0.247, 0.243, 0.261])
    return _save(path, model, processor)


def tiny_resnet(path: str | Path, image_size: int = 32, seed: int = 0) -> Path:
    """A two-stage ResNet (He et al. 2016; basic blocks, batch norm after every convolution, the
    architecture family of Khosla et al.'s SupCon code) with a ConvNeXt-style image processor."""
    from transformers import ConvNextImageProcessor, ResNetConfig, ResNetModel

    torch.manual_seed(seed)
    config = ResNetConfig(embedding_size=32, hidden_sizes=[32, 64], depths=[1, 1], layer_type="basic",
                          downsample_in_first_stage=False)
    model = ResNetModel(config)
    processor = ConvNextImageProcessor(size={"shortest_edge": image_size}, crop_pct=1.0,
                                       image_mean=[0.4914, 0.4822, 0.4465], image_std=[0.247, 0.243, 0.261])
    return _save(path, model, processor)


def tiny_wav2vec2(path: str | Path, sampling_rate: int = 8000, hidden_size: int = 64, num_layers: int = 2,
                  num_heads: int = 4, seed: int = 0) -> Path:
    """A wav2vec 2.0 (Baevski et al. 2020) with a 3-layer conv front end (stride 5*4*4 = 80 samples,
    10 ms at 8 kHz) and its feature extractor (zero-mean unit-variance input, attention masks)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    config = Wav2Vec2Config(hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
                            intermediate_size=4 * hidden_size, conv_dim=(32, 32, 32), conv_stride=(5, 4, 4),
                            conv_kernel=(10, 8, 8), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4,
                            feat_extract_norm="layer", do_stable_layer_norm=True, mask_time_prob=0.0)
    model = Wav2Vec2Model(config)
    extractor = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=sampling_rate, padding_value=0.0,
                                         do_normalize=True, return_attention_mask=True)
    return _save(path, model, extractor)


def _save(path: str | Path, model, processor) -> Path:
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path, safe_serialization=True)
    processor.save_pretrained(path)
    return path


BUILDERS = {"vit": tiny_vit, "convnext": tiny_convnext, "resnet": tiny_resnet, "wav2vec2": tiny_wav2vec2}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("kind", choices=sorted(BUILDERS))
    p.add_argument("out", help="folder to write")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    print(BUILDERS[args.kind](args.out, seed=args.seed))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
