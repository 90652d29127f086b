"""Speech adapter: TERA self-supervised pre-training on log-mel frames with frozen-feature probes.

Liu, Li and Lee, "TERA: Self-Supervised Learning of Transformer Encoder Representation for Speech",
IEEE/ACM TASLP 2021, following the s3prl implementation (``pretrain/mockingjay/task.py``).
"""
