"""Readers for point clouds and their labels: .ply/.pcd (open3d), .xyz/.txt, .npy/.npz, KITTI velodyne
.bin (+ label_2, calib), nuScenes .pcd.bin + mmdetection3d info pickles, ModelNet .off folders and the
ModelNet40 / ScanObjectNN h5 files. Everything returns numpy float32 arrays."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from multissl.data import resolve_data_path
from multissl.errors import DataError


def read_points(path: str | Path) -> np.ndarray:
    """(N, C>=3) float32 points of a file; the first three columns are x, y, z.

    ``.bin``: KITTI velodyne (N, 4) float32, or nuScenes ``.pcd.bin`` (N, 5) when the name says so.
    ``.ply``/``.pcd``: read with open3d. ``.xyz``/``.txt``/``.pts``: whitespace or comma text.
    """
    p = resolve_data_path(path, "point cloud")
    name = p.name.lower()
    if name.endswith(".pcd.bin") or p.suffix == ".bin":
        cols, layout = (5, "nuScenes x, y, z, intensity, ring") if name.endswith(".pcd.bin") else \
            (4, "KITTI velodyne x, y, z, reflectance")
        size = p.stat().st_size
        if size % (4 * cols):  # np.fromfile would silently drop the tail
            raise DataError(f"{p}: {size} bytes is not a whole number of {4 * cols}-byte points ({cols} float32: "
                            f"{layout}); the file is truncated or not a point cloud")
        return np.fromfile(p, np.float32).reshape(-1, cols)
    if p.suffix == ".npy":
        return np.load(p, allow_pickle=False).astype(np.float32)
    if p.suffix == ".npz":
        z = np.load(p, allow_pickle=False)
        return np.asarray(z[z.files[0]], np.float32)
    if p.suffix in (".ply", ".pcd"):
        from multissl.pointcloud.o3d import import_open3d

        o3d = import_open3d()
        pc = o3d.io.read_point_cloud(str(p))
        if len(pc.points) == 0:
            mesh = o3d.io.read_triangle_mesh(str(p))
            return np.asarray(mesh.vertices, np.float32)
        return np.asarray(pc.points, np.float32)
    if p.suffix in (".xyz", ".txt", ".pts", ".csv"):
        return np.loadtxt(p, delimiter="," if p.suffix == ".csv" else None, dtype=np.float32, ndmin=2)
    if p.suffix == ".off":
        return read_off(p)[0]
    raise DataError(f"{p}: unknown point-cloud format (use .ply .pcd .xyz .txt .npy .npz .bin .off)")


def read_off(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and triangles (F, 3) of an OFF mesh; accepts ModelNet's ``OFF3514 3546 0`` header."""
    p = resolve_data_path(path, "OFF mesh")
    tokens = p.read_text().split()
    if not tokens or not tokens[0].startswith("OFF"):
        raise DataError(f"{p} is not an OFF file")
    head = tokens[0][3:]
    rest = ([head] if head else []) + tokens[1:]
    nv, nf = int(rest[0]), int(rest[1])
    vals = rest[3:]
    verts = np.asarray(vals[: 3 * nv], np.float32).reshape(nv, 3)
    faces, pos = [], 3 * nv
    for _ in range(nf):
        k = int(vals[pos])
        poly = [int(v) for v in vals[pos + 1 : pos + 1 + k]]
        faces.extend([poly[0], poly[i], poly[i + 1]] for i in range(1, k - 1))  # fan triangulation
        pos += 1 + k
    return verts, np.asarray(faces, np.int64).reshape(-1, 3)


def sample_mesh(verts: np.ndarray, faces: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points uniformly on a triangle mesh's surface (area-weighted faces, uniform barycentrics)."""
    tri = verts[faces]  # (F, 3, 3)
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    f = rng.choice(len(faces), n, p=area / area.sum())
    u, v = rng.random(n), rng.random(n)
    flip = u + v > 1
    u[flip], v[flip] = 1 - u[flip], 1 - v[flip]
    t = tri[f]
    return (t[:, 0] + u[:, None] * (t[:, 1] - t[:, 0]) + v[:, None] * (t[:, 2] - t[:, 0])).astype(np.float32)


def normalize_unit_sphere(x: np.ndarray) -> np.ndarray:
    """Centre a cloud (..., N, 3) and scale it into the unit sphere (Point-MAE's pc_norm)."""
    x = x - x.mean(-2, keepdims=True)
    return x / np.linalg.norm(x, axis=-1).max(-1)[..., None, None].clip(1e-9)


def normalize(x: np.ndarray, how: str = "unit_sphere") -> np.ndarray:
    """``unit_sphere`` (Point-MAE's pc_norm: size thrown away) or ``centre`` (centred, metric size kept:
    for real crops, where an object's size is a strong cue)."""
    if how == "unit_sphere":
        return normalize_unit_sphere(x)
    if how == "centre":
        return (x - x.mean(-2, keepdims=True)).astype(np.float32)
    raise DataError(f"normalize must be 'unit_sphere' or 'centre', got {how!r}")


@dataclass
class ClassificationSet:
    """Clouds (N, P, 3) float32 and labels (N,) int64, with optional class names."""

    points: np.ndarray
    labels: np.ndarray
    classes: list[str]


def load_off_folder(root: str | Path, split: str = "train", num_points: int = 1024, seed: int = 0,
                    limit_per_class: int | None = None, how: str = "unit_sphere") -> ClassificationSet:
    """A ModelNet-style folder ``root/<class>/<split>/*.off`` sampled to ``num_points`` per mesh, unit sphere."""
    base = resolve_data_path(root, "ModelNet .off folder")
    classes = sorted(d.name for d in base.iterdir() if (d / split).is_dir())
    if not classes:
        raise DataError(f"{base}: expected <class>/{split}/*.off sub-folders")
    rng = np.random.default_rng(seed)
    pts, labels = [], []
    for c, name in enumerate(classes):
        files = sorted((base / name / split).glob("*.off"))[:limit_per_class]
        for f in files:
            v, fa = read_off(f)
            pts.append(sample_mesh(v, fa, num_points, rng))
            labels.append(c)
    return ClassificationSet(normalize(np.stack(pts), how), np.asarray(labels, np.int64), classes)


def load_h5_set(paths: str | Path | list[str | Path], num_points: int = 1024,
                key_points: str = "data", key_labels: str = "label", how: str = "unit_sphere") -> ClassificationSet:
    """ModelNet40 (``ply_data_*.h5``, 2,048 points) or ScanObjectNN (``*_objectdataset*.h5``) files.

    A folder loads every ``*.h5`` in it (sorted); points are truncated to ``num_points`` (the files are
    already in random order), kept to xyz and normalised to the unit sphere.
    """
    import h5py

    items = paths if isinstance(paths, list) else [paths]
    files: list[Path] = []
    for item in items:
        p = resolve_data_path(item, "h5 file")
        files += sorted(p.glob("*.h5")) if p.is_dir() else [p]
    xs, ys = [], []
    for f in files:
        with h5py.File(f, "r") as h:
            xs.append(np.asarray(h[key_points][:, :num_points, :3], np.float32))
            ys.append(np.asarray(h[key_labels]).reshape(-1).astype(np.int64))
    x = np.concatenate(xs)
    return ClassificationSet(normalize(x, how), np.concatenate(ys), [])


# -- LiDAR scenes --------------------------------------------------------------------------------
@dataclass
class Scene:
    """A LiDAR sweep (N, C) and its boxes (K, 7) x, y, z (centre), l, w, h, yaw in the LiDAR frame.

    KITTI scenes also keep their camera-frame boxes (K, 7) ``h w l x y z ry`` and the 4x4 LiDAR ->
    rectified-camera map, so :func:`box_points` can run KITTI's exact in-box test."""

    points: np.ndarray
    boxes: np.ndarray
    labels: list[str]
    boxes_cam: np.ndarray | None = None
    velo_to_rect: np.ndarray | None = None


def velo_to_rect(r0: np.ndarray, velo_to_cam: np.ndarray) -> np.ndarray:
    """The 4x4 LiDAR -> rectified camera map R0_rect @ Tr_velo_to_cam."""
    t = np.eye(4)
    t[:3, :4] = np.asarray(velo_to_cam, np.float64).reshape(3, 4)
    r = np.eye(4)
    r[:3, :3] = np.asarray(r0, np.float64).reshape(3, 3)
    return r @ t


def points_in_camera_boxes(points: np.ndarray, boxes_cam: np.ndarray, to_rect: np.ndarray) -> np.ndarray:
    """(K, N) bool: KITTI's exact in-box test in the rectified camera frame (box ``h w l x y z ry``,
    (x, y, z) the bottom centre, ry a rotation about the camera's y axis), as the KITTI devkit and
    mmdetection3d crop objects. The LiDAR-frame test of :func:`points_in_boxes` approximates it (the
    camera's y axis is not exactly the LiDAR's z, and the bottom face is closed here): on KITTI 000008
    it gives 1,325 points for a car the exact test gives 1,424."""
    rect = np.c_[points[:, :3], np.ones(len(points))] @ to_rect.T  # (N, 4)
    out = np.zeros((len(boxes_cam), len(points)), bool)
    for k, (h, w, l, x, y, z, ry) in enumerate(np.asarray(boxes_cam, np.float64)):
        d = rect[:, :3] - np.array([x, y, z])
        c, s = np.cos(ry), np.sin(ry)
        lx, lz, ly = c * d[:, 0] - s * d[:, 2], s * d[:, 0] + c * d[:, 2], d[:, 1]
        out[k] = (np.abs(lx) <= l / 2) & (np.abs(lz) <= w / 2) & (ly <= 0) & (ly >= -h)
    return out


def box_points(scene: Scene) -> np.ndarray:
    """(K, N) bool: which points lie in each box; exact for KITTI scenes (camera frame), else the
    LiDAR-frame test."""
    if scene.boxes_cam is not None and scene.velo_to_rect is not None:
        return points_in_camera_boxes(scene.points, scene.boxes_cam, scene.velo_to_rect)
    return points_in_boxes(scene.points, scene.boxes)


def read_kitti_calib(path: str | Path) -> dict[str, np.ndarray]:
    vals = {}
    for line in resolve_data_path(path, "KITTI calib").read_text().splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            vals[k.strip()] = np.array([float(x) for x in v.split()], np.float64)
    return vals


def cam_boxes_to_lidar(hwl_xyz_ry: np.ndarray, r0: np.ndarray, velo_to_cam: np.ndarray) -> np.ndarray:
    """KITTI camera boxes (K, 7) ``h w l x y z ry`` (bottom centre) -> LiDAR boxes (K, 7) ``x y z l w h yaw``."""
    if len(hwl_xyz_ry) == 0:
        return np.zeros((0, 7), np.float32)
    h, w, l, x, y, z, ry = hwl_xyz_ry.T
    t = np.eye(4)
    t[:3, :4] = velo_to_cam.reshape(3, 4)
    r = np.eye(4)
    r[:3, :3] = r0.reshape(3, 3)
    cam_to_velo = np.linalg.inv(r @ t)
    bottom = np.stack([x, y, z, np.ones_like(x)], 1) @ cam_to_velo.T
    centre = bottom[:, :3] + np.stack([np.zeros_like(h), np.zeros_like(h), h / 2], 1)
    yaw = -ry - np.pi / 2
    return np.stack([*centre.T, l, w, h, yaw], 1).astype(np.float32)


def read_kitti_scene(velodyne: str | Path, label: str | Path, calib: str | Path) -> Scene:
    """A KITTI object frame: velodyne points, label_2 boxes (DontCare dropped) in the LiDAR frame."""
    pts = read_points(velodyne)
    cal = read_kitti_calib(calib)
    rows, names = [], []
    for line in resolve_data_path(label, "KITTI label").read_text().splitlines():
        f = line.split()
        if f and f[0] != "DontCare":
            names.append(f[0])
            rows.append([float(v) for v in f[8:15]])
    cam = np.asarray(rows, np.float64).reshape(-1, 7)
    boxes = cam_boxes_to_lidar(cam, cal["R0_rect"], cal["Tr_velo_to_cam"])
    return Scene(pts, boxes, names, cam.astype(np.float32), velo_to_rect(cal["R0_rect"], cal["Tr_velo_to_cam"]))


class _InfoUnpickler(pickle.Unpickler):
    """Unpickler for mmdetection3d info files that refuses everything but containers, scalars and
    NumPy arrays, so a hostile ``.pkl`` cannot run code (the info format is itself a pickle)."""

    _ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar"), ("collections", "OrderedDict"),
                ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
                ("_codecs", "encode")}  # how protocol-2 pickles store NumPy bytes

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED or (module == "numpy" and name.endswith("dtype")) or \
                module.startswith("numpy.dtypes"):
            return super().find_class(module, name)
        raise DataError(f"info pickle refers to {module}.{name}; only plain data and NumPy arrays are read")


def load_info_pickle(path: str | Path) -> dict:
    """Read an mmdetection3d ``.pkl`` info file with :class:`_InfoUnpickler` (plain data only)."""
    import io as _io

    return _InfoUnpickler(_io.BytesIO(resolve_data_path(path, "info pickle").read_bytes())).load()


def read_mmdet3d_kitti(bin_path: str | Path, pkl_path: str | Path) -> Scene:
    """The mmdetection3d demo KITTI frame: camera boxes ``x y z l h w ry`` in the info pickle."""
    info = load_info_pickle(pkl_path)["data_list"][0]
    inst = [i for i in info["instances"] if i["bbox_label_3d"] >= 0]
    names = {0: "Pedestrian", 1: "Cyclist", 2: "Car"}
    cam = np.asarray([i["bbox_3d"] for i in inst], np.float64).reshape(-1, 7)
    hwl = np.stack([cam[:, 4], cam[:, 5], cam[:, 3], cam[:, 0], cam[:, 1], cam[:, 2], cam[:, 6]], 1)
    velo = np.asarray(info["lidar_points"]["Tr_velo_to_cam"], np.float64)[:3]
    r0 = np.asarray(info["images"]["R0_rect"], np.float64)[:3, :3]
    return Scene(read_points(bin_path), cam_boxes_to_lidar(hwl, r0, velo),
                 [names[i["bbox_label_3d"]] for i in inst], hwl.astype(np.float32), velo_to_rect(r0, velo))


def read_nuscenes_sample(bin_path: str | Path, pkl_path: str | Path) -> Scene:
    """A nuScenes LIDAR_TOP sweep and its mmdetection3d info boxes (LiDAR frame x y z l w h yaw)."""
    data = load_info_pickle(pkl_path)
    info = data["data_list"][0]
    cats = data.get("metainfo", {}).get("categories", {})
    inv = {v: k for k, v in cats.items()} if cats else {}
    boxes = np.asarray([i["bbox_3d"] for i in info["instances"]], np.float32).reshape(-1, 7)
    # mmdet3d's nuScenes infos store gravity-centre boxes (origin (0.5, 0.5, 0.5)): no shift needed
    names = [inv.get(i["bbox_label_3d"], str(i["bbox_label_3d"])) for i in info["instances"]]
    return Scene(read_points(bin_path), boxes, names)


def points_in_boxes(points: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(K, N) bool: whether each point lies in each box (x y z l w h yaw, centre)."""
    d = points[None, :, :3] - boxes[:, None, :3]
    c, s = np.cos(boxes[:, 6])[:, None], np.sin(boxes[:, 6])[:, None]
    lx = d[..., 0] * c + d[..., 1] * s
    ly = -d[..., 0] * s + d[..., 1] * c
    return ((np.abs(lx) <= boxes[:, None, 3] / 2) & (np.abs(ly) <= boxes[:, None, 4] / 2)
            & (np.abs(d[..., 2]) <= boxes[:, None, 5] / 2))
