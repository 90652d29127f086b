"""Point-cloud adapter: Point-MAE (Pang et al., ECCV 2022) on object clouds and equivariant
spatio-temporal self-supervision for LiDAR BEV detection (Hegde et al., ECCV 2024), with open3d I/O,
a procedural labelled shape set and a RaycastingScene LiDAR simulator."""
