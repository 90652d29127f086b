"""LiDAR scenes: a RaycastingScene sweep simulator, a PointPillars-style BEV backbone, equivariant /
invariant spatio-temporal pre-training (Hegde et al., ECCV 2024) and few-label CenterPoint-style car
detection."""
