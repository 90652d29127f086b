"""Names this adapter registers (strings only: importing this file must stay cheap)."""

TASKS = {
    "pointcloud.pointmae": ("multissl.pointcloud.objects.task:PointMAETask",
                            "Point-MAE masked point modelling on object clouds (procedural set / ModelNet / ScanObjectNN)"),
    "pointcloud.lidar": ("multissl.pointcloud.lidar.task:LidarTask",
                         "equivariant / invariant spatio-temporal BEV pre-training + few-label LiDAR detection"),
}
EVALS = {
    "pointcloud.cls": ("multissl.pointcloud.objects.evaluate:main",
                       "probe + fine-tune (single-pass and voted) classification of a Point-MAE run or scratch"),
}
BENCHES = {
    "pointcloud": ("multissl.pointcloud.bench:main", "FPS+kNN vs open3d / brute force; Point-MAE clouds/s"),
}
