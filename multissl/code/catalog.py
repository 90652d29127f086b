"""Names the code adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "code.cocosoda": ("multissl.code.tasks:CoCoSoDaTask",
                      "CoCoSoDa (Shi et al. 2023): momentum contrastive code search with soft data augmentation"),
    "code.finetune": ("multissl.code.tasks:FineTuneTask",
                      "code-search fine-tuning: in-batch query -> code InfoNCE, best epoch by validation MRR"),
}
EVALS = {
    "code": ("multissl.code.evaluate:main",
             "code-search MRR / R@k of any encoder on our mined set, CodeSearchNet, CodeXGLUE, CoSQA layouts"),
}
BENCHES = {
    "code": ("multissl.code.bench:main", "code search: full test-codebase evaluation time and training pairs/s"),
}
