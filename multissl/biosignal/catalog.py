"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "biosignal.participant": ("multissl.biosignal.tasks:ParticipantContrastiveTask",
                              "participant-level contrastive PPG/ECG pre-training (Abbaspourazad et al. 2024)"),
}
EVALS = {
    "biosignal-probes": ("multissl.biosignal.evaluate:main",
                         "participant-level probe table: hand-crafted vs random-init vs pre-trained, 3 seeds"),
}
BENCHES = {
    "biosignal": ("multissl.biosignal.bench:main", "segments/s of pre-training and embedding (CPU, GPU if present)"),
}
