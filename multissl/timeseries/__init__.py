"""Time-series forecasting adapter: shared windowing / scaling / loaders / metrics for every
forecaster, linear and last-value baselines, and contrastive learning for forecasting
(Zhang et al. 2023, "What Constitutes Good Contrastive Learning in Time-Series Forecasting?")."""
