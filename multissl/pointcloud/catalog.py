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
    "pointcloud.detect": ("multissl.pointcloud.lidar.detect:main",
                          "detect cars in a folder of LiDAR scans with a pointcloud.lidar run; KITTI label files"),
    "pointcloud.cls-real": ("multissl.pointcloud.objects.real_study:main",
                            "Point-MAE on real objects: ModelNet10 SVM / fine-tune and real LiDAR car-vs-other crops"),
    "pointcloud.lidar-real": ("multissl.pointcloud.lidar.real_study:main",
                              "scratch vs invariant vs equivariant: detector fine-tuned on real KITTI frames"),
}
BENCHES = {
    "pointcloud": ("multissl.pointcloud.bench:main", "FPS+kNN vs open3d / brute force; Point-MAE clouds/s"),
}
