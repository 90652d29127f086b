"""Code adapter: code search with CoCoSoDa (Shi et al., ICSE 2023) and in-batch fine-tuning, evaluated by
MRR / R@k over a whole code base; a CodeSearchNet-style set mined from installed Python source."""
