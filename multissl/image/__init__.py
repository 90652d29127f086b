"""Image adapter: SimCLR, MoCo v2, BYOL, Barlow Twins, DCL, MoCHi and SwAV on torchvision/timm
backbones, with batched device-side augmentations and kNN / linear-probe evaluation."""
