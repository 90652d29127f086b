"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "vl.pretrain": ("multissl.vl.tasks:VLPretrainTask",
                    "CLIP-style ITC / ALBEF / TCL image-text pre-training (switchable terms), retrieval R@K"),
}
EVALS = {
    "retrieval": ("multissl.vl.evaluate:main", "image<->text R@1/5/10 of a run (or a fresh model) on any caption layout"),
}
BENCHES = {
    "vl": ("multissl.vl.bench:main", "pairs/s of an ITC training step: multissl vs open_clip ClipLoss, same towers"),
}
