"""Readers on the shipped real files: KITTI / nuScenes scans and boxes, ModelNet .off, h5, ply/pcd/xyz."""

import pickle

import numpy as np
import pytest

from multissl.errors import DataError
from multissl.pointcloud import io

K = "pointcloud/kitti_object/training"
M = "pointcloud/mmdet3d_demo"
NUS = f"{M}/nuscenes/n015-2018-07-24-11-22-45+0800"


def test_kitti_scan_and_boxes_in_lidar_frame():
    sc = io.read_kitti_scene(f"{K}/velodyne/000000.bin", f"{K}/label_2/000000.txt", f"{K}/calib/000000.txt")
    assert sc.points.shape == (115384, 4) and sc.labels == ["Pedestrian"]
    inside = io.points_in_boxes(sc.points, sc.boxes).sum(1)
    assert inside[0] > 50  # the pedestrian 8.4 m ahead is hit by many beams
    assert 7 < sc.boxes[0, 0] < 10  # x forward in the LiDAR frame


def test_mmdet3d_kitti_box_point_counts_agree_with_the_info_file():
    sc = io.read_mmdet3d_kitti(f"{M}/kitti/000008.bin", f"{M}/kitti/000008.pkl")
    info = pickle.load(open(io.resolve_data_path(f"{M}/kitti/000008.pkl"), "rb"))["data_list"][0]
    ref = np.array([i["num_lidar_pts"] for i in info["instances"] if i["bbox_label_3d"] >= 0])
    got = io.points_in_boxes(sc.points, sc.boxes).sum(1)
    assert sc.labels.count("Car") == 6
    assert np.all(np.abs(got - ref) <= 0.1 * ref + 5)


def test_nuscenes_sweep_and_boxes():
    sc = io.read_nuscenes_sample(f"{NUS}__LIDAR_TOP__1532402927647951.pcd.bin", f"{NUS}.pkl")
    assert sc.points.shape == (34688, 5) and len(sc.boxes) == 69
    info = pickle.load(open(io.resolve_data_path(f"{NUS}.pkl"), "rb"))["data_list"][0]
    ref = np.array([i["num_lidar_pts"] for i in info["instances"]])
    got = io.points_in_boxes(sc.points, sc.boxes).sum(1)
    busy = ref > 20  # boxes with a real number of points: counts agree closely
    assert busy.sum() > 5 and np.median(np.abs(got[busy] - ref[busy]) / ref[busy]) < 0.1


def test_off_reader_accepts_both_headers(tmp_path):
    v, f = io.read_off("pointcloud/modelnet_samples/ModelNet10/bathtub/train/bathtub_0002.off")
    assert v.shape == (700, 3) and f.shape[1] == 3 and f.max() < 700
    p = tmp_path / "joined.off"
    p.write_text("OFF4 2 0\n0 0 0\n1 0 0\n1 1 0\n0 1 0\n3 0 1 2\n4 0 1 2 3\n")
    v2, f2 = io.read_off(p)
    assert v2.shape == (4, 3) and len(f2) == 3  # the quad is fan-triangulated


def test_off_folder_loader_on_real_modelnet_meshes():
    s = io.load_off_folder("pointcloud/modelnet_samples/ModelNet10", "train", 256)
    assert s.points.shape == (3, 256, 3) and s.classes == ["bathtub"]
    assert np.allclose(np.linalg.norm(s.points, axis=-1).max(-1), 1, atol=1e-5)


def test_h5_loader_modelnet40_layout(tmp_path):
    h5py = pytest.importorskip("h5py")
    x = np.random.default_rng(0).normal(size=(5, 2048, 3)).astype(np.float32)
    with h5py.File(tmp_path / "ply_data_train0.h5", "w") as h:
        h["data"], h["label"] = x, np.arange(5).reshape(5, 1)
    s = io.load_h5_set(tmp_path, 1024)
    assert s.points.shape == (5, 1024, 3) and s.labels.tolist() == [0, 1, 2, 3, 4]


def test_point_file_formats_roundtrip(tmp_path):
    from multissl.pointcloud.o3d import import_open3d

    o3d = import_open3d()
    x = np.random.default_rng(0).random((50, 3)).astype(np.float32)
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(x.astype(np.float64)))
    for ext in ("ply", "pcd"):
        o3d.io.write_point_cloud(str(tmp_path / f"a.{ext}"), pc)
        assert np.allclose(io.read_points(tmp_path / f"a.{ext}"), x, atol=1e-6)
    np.savetxt(tmp_path / "a.xyz", x)
    np.save(tmp_path / "a.npy", x)
    assert np.allclose(io.read_points(tmp_path / "a.xyz"), x, atol=1e-6)
    assert np.allclose(io.read_points(tmp_path / "a.npy"), x)
    with pytest.raises(DataError):
        io.read_points(tmp_path / "missing.ply")


def test_info_pickle_refuses_code(tmp_path):
    import os
    import pickle

    import pytest

    from multissl.errors import DataError
    from multissl.pointcloud.io import load_info_pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo unsafe",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"data_list": [Evil()]}))
    with pytest.raises(DataError, match="only plain data"):
        load_info_pickle(path)
