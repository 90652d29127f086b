"""Point-cloud adapter, two families on shared I/O and geometry (``io``, ``ops``, ``o3d``, ``cache``):

* ``objects``: Point-MAE (Pang et al., ECCV 2022) on object clouds (procedural set, ModelNet, ScanObjectNN);
* ``lidar``: equivariant spatio-temporal self-supervision for LiDAR BEV detection (Hegde et al.,
  ECCV 2024) on a RaycastingScene simulator and real KITTI / nuScenes scans.
"""
