"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "text.simcse": ("multissl.text.tasks:SimCSETask", "unsupervised SimCSE (Gao et al. 2021) on any HF encoder"),
    "text.esimcse": ("multissl.text.tasks:ESimCSETask", "ESimCSE (Wu et al. 2022): word repetition + momentum queue"),
    "text.whitenedcse": ("multissl.text.tasks:WhitenedCSETask",
                         "WhitenedCSE (Zhuo et al. 2023): shuffled group whitening, 3 positives"),
    "text.mlm": ("multissl.text.tasks:MLMTask", "masked language modelling: small BERT from scratch or domain adaptation"),
}
EVALS = {
    "sts": ("multissl.text.evaluate:main", "STS Spearman of any encoder on STS-B / SentEval STS12-16 / SICK-R / hf:"),
}
BENCHES = {
    "text": ("multissl.text.bench:main", "multissl unsup-SimCSE vs sentence-transformers (throughput + STS-B)"),
}
