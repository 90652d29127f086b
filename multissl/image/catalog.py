"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "image.simclr": ("multissl.image.tasks:SimCLRTask", "SimCLR (NT-Xent, 2 views) on images"),
    "image.dcl": ("multissl.image.tasks:DCLTask", "DCL: SimCLR without the positive in the denominator"),
    "image.mocov2": ("multissl.image.tasks:MoCoV2Task", "MoCo v2: momentum key encoder + queue"),
    "image.mochi": ("multissl.image.tasks:MoCHiTask", "MoCHi: MoCo v2 + hard negative mixing"),
    "image.byol": ("multissl.image.tasks:BYOLTask", "BYOL: predictor + EMA target (cosine momentum)"),
    "image.barlowtwins": ("multissl.image.tasks:BarlowTwinsTask", "Barlow Twins: cross-correlation to identity"),
    "image.swav": ("multissl.image.tasks:SwAVTask", "SwAV: Sinkhorn-Knopp codes over prototypes, multi-crop"),
}
EVALS = {
    "image-knn": ("multissl.image.evaluate:main", "kNN / linear probe of a trained image run on an image set"),
}
BENCHES = {
    "image": ("multissl.image.bench:main", "SimCLR images/s: multissl (device-side views) vs lightly"),
}
