"""Names the contrastive fine-tuning family registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "contrastive.pairs": ("multissl.finetune.tasks:PairsTask",
                          ("fine-tune any HF text encoder on (anchor, positive[, negatives]) pairs: in-batch + hard "
                           "negatives, GradCache, duplicate masking (MNRL / supervised SimCSE)")),
    "contrastive.supcon": ("multissl.finetune.tasks:SupConTask",
                           ("fine-tune any HF text / vision / audio encoder on labels: SupCon (Khosla et al. 2020) "
                            "or the cross-entropy baseline")),
}
EVALS = {}
BENCHES = {
    "finetune": ("multissl.finetune.bench:main",
                 "contrastive.pairs vs sentence-transformers MNRL (and cached MNRL): throughput and STS, side by side"),
}
