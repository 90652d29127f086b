"""Object point clouds: Point-MAE (Pang et al., ECCV 2022) masked point modelling, the procedural
labelled shape set, ModelNet / ScanObjectNN loading, probes and fine-tuning for classification."""
