"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "vl.clip": ("multissl.vl.tasks:CLIPTask", "CLIP-style image-text contrast (Radford et al. 2021), retrieval R@K"),
    "vl.albef": ("multissl.vl.tasks:ALBEFTask", "ALBEF (Li et al. 2021): momentum-distilled ITC, ITM, MLM; retrieval R@K"),
    "vl.tcl": ("multissl.vl.tasks:TCLTask", "TCL (Yang et al. 2022): ALBEF + intra-modal and local-MI contrast"),
}
EVALS = {
    "retrieval": ("multissl.vl.evaluate:main", "image<->text R@1/5/10 of a run (or a fresh model) on any caption layout"),
}
BENCHES = {
    "vl": ("multissl.vl.bench:main", "pairs/s of an ITC training step: multissl vs open_clip ClipLoss, same towers"),
}
