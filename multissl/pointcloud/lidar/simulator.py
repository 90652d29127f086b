"""A small LiDAR simulator on open3d's ``RaycastingScene``: a spinning multi-beam sensor over a ground
plane with cars (boxes), pedestrians (cylinders) and roadside buildings, objects moving between frames.

Each sequence is deterministic under its seed; all rays of a sweep are cast in one vectorised call.
Frames are in the sensor frame (x forward, y left, z up, origin at the sensor, as KITTI's LiDAR);
labels are boxes (K, 7) ``x y z l w h yaw`` (centre) with classes 0 car, 1 pedestrian. Temporal pairs
come with a flow estimate from open3d ICP (ego motion) + nearest neighbour (residual object motion).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass

import numpy as np

from multissl.pointcloud.cache import cache_dir
from multissl.pointcloud.o3d import import_open3d


@dataclass
class SimConfig:
    beams: int = 32            # HDL-32E-like
    elevation: tuple[float, float] = (-25.0, 5.0)  # degrees, lowest / highest beam
    azimuth_steps: int = 720   # 0.5 degree
    sensor_height: float = 1.8
    max_range: float = 40.0
    range_noise: float = 0.02  # metres (Gaussian)
    area: float = 30.0         # objects placed in [-area, area]^2 around the start
    cars: tuple[int, int] = (4, 10)
    pedestrians: tuple[int, int] = (2, 6)
    buildings: tuple[int, int] = (2, 5)
    dt: float = 0.1            # seconds between sweeps (10 Hz)
    ego_speed: tuple[float, float] = (0.0, 10.0)
    car_speed: tuple[float, float] = (0.0, 12.0)
    ped_speed: tuple[float, float] = (0.0, 1.5)


@dataclass
class Frame:
    points: np.ndarray  # (N, 3) float32, sensor frame
    boxes: np.ndarray   # (K, 7) float32
    labels: np.ndarray  # (K,) int64
    ego: np.ndarray     # (3,) ego x, y, yaw in the world


def _box_mesh(l: float, w: float, h: float) -> tuple[np.ndarray, np.ndarray]:
    v = np.array([[x, y, z] for x in (-l / 2, l / 2) for y in (-w / 2, w / 2) for z in (-h / 2, h / 2)], np.float32)
    f = np.array([[0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5], [0, 4, 5], [0, 5, 1],
                  [2, 3, 7], [2, 7, 6], [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3]], np.uint32)
    return v, f


def _cyl_mesh(r: float, h: float, seg: int = 12) -> tuple[np.ndarray, np.ndarray]:
    a = np.linspace(0, 2 * np.pi, seg, endpoint=False)
    ring = np.stack([r * np.cos(a), r * np.sin(a)], 1)
    v = np.concatenate([np.c_[ring, np.full(seg, -h / 2)], np.c_[ring, np.full(seg, h / 2)],
                        [[0, 0, -h / 2], [0, 0, h / 2]]]).astype(np.float32)
    f = []
    for i in range(seg):
        j = (i + 1) % seg
        f += [[i, j, seg + j], [i, seg + j, seg + i], [2 * seg, j, i], [2 * seg + 1, seg + i, seg + j]]
    return v, np.asarray(f, np.uint32)


def _place(v: np.ndarray, x: float, y: float, z: float, yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return (v @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]], np.float32).T + np.array([x, y, z], np.float32))


def ray_directions(cfg: SimConfig) -> np.ndarray:
    """(beams * azimuth_steps, 3) unit directions of one sweep."""
    el = np.deg2rad(np.linspace(cfg.elevation[0], cfg.elevation[1], cfg.beams))
    az = np.linspace(-np.pi, np.pi, cfg.azimuth_steps, endpoint=False)
    e, a = np.meshgrid(el, az, indexing="ij")
    return np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3).astype(np.float32)


def simulate_sequence(seed: int, frames: int = 2, cfg: SimConfig | None = None) -> list[Frame]:
    """``frames`` consecutive sweeps of one random scene (seeded)."""
    cfg = cfg or SimConfig()
    o3d = import_open3d()
    rng = np.random.default_rng(seed)
    objs = []  # (kind, x, y, yaw, speed, l, w, h)
    road_yaw = rng.uniform(-0.15, 0.15)
    for _ in range(rng.integers(*cfg.cars, endpoint=True)):
        parked = rng.random() < 0.4
        lane = rng.choice([-5.5, -1.75, 1.75, 5.5]) if not parked else rng.choice([-8.5, 8.5])
        along = rng.uniform(-cfg.area, cfg.area)
        yaw = road_yaw + (np.pi if (lane > 0 and not parked) else 0.0) + rng.normal(0, 0.05)
        if parked and rng.random() < 0.3:
            yaw = rng.uniform(-np.pi, np.pi)
        speed = 0.0 if parked else rng.uniform(*cfg.car_speed)
        x = along * np.cos(road_yaw) - lane * np.sin(road_yaw)
        y = along * np.sin(road_yaw) + lane * np.cos(road_yaw)
        if abs(x) < 3 and abs(y) < 2:
            continue  # not on top of the sensor
        objs.append([0, x, y, yaw, speed, rng.uniform(3.8, 4.9), rng.uniform(1.6, 2.0), rng.uniform(1.4, 1.8)])
    for _ in range(rng.integers(*cfg.pedestrians, endpoint=True)):
        side = rng.choice([-1, 1]) * rng.uniform(7.0, 12.0)
        x, y = rng.uniform(-cfg.area, cfg.area), side
        objs.append([1, x, y, rng.uniform(-np.pi, np.pi), rng.uniform(*cfg.ped_speed), 0.6, 0.6, rng.uniform(1.5, 1.9)])
    statics = []  # buildings: large boxes off the road on both sides
    for _ in range(rng.integers(*cfg.buildings, endpoint=True)):
        side = rng.choice([-1, 1])
        statics.append((rng.uniform(8, 20), rng.uniform(5, 10), rng.uniform(4, 12),
                        rng.uniform(-cfg.area, cfg.area), side * rng.uniform(16, 24)))
    ego_speed = rng.uniform(*cfg.ego_speed)
    dirs = ray_directions(cfg)
    ground_v = np.array([[-200, -200, 0], [200, -200, 0], [200, 200, 0], [-200, 200, 0]], np.float32)
    ground_f = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
    out = []
    for t in range(frames):
        ego = np.array([ego_speed * cfg.dt * t * np.cos(road_yaw), ego_speed * cfg.dt * t * np.sin(road_yaw), 0.0])
        scene = o3d.t.geometry.RaycastingScene()
        scene.add_triangles(o3d.core.Tensor(ground_v), o3d.core.Tensor(ground_f))
        for l, w, h, bx, by in statics:
            v, f = _box_mesh(l, w, h)
            scene.add_triangles(o3d.core.Tensor(_place(v, bx, by, h / 2, road_yaw)), o3d.core.Tensor(f))
        boxes, labels = [], []
        for kind, x, y, yaw, speed, l, w, h in objs:
            x, y = x + speed * cfg.dt * t * np.cos(yaw), y + speed * cfg.dt * t * np.sin(yaw)
            v, f = _box_mesh(l, w, h) if kind == 0 else _cyl_mesh(0.3, h)
            scene.add_triangles(o3d.core.Tensor(_place(v, x, y, h / 2, yaw)), o3d.core.Tensor(f))
            boxes.append([x - ego[0], y - ego[1], h / 2 - cfg.sensor_height, l, w, h, yaw])
            labels.append(int(kind))
        origin = np.array([ego[0], ego[1], cfg.sensor_height], np.float32)
        rays = np.concatenate([np.broadcast_to(origin, dirs.shape), dirs], 1).astype(np.float32)
        hit = scene.cast_rays(o3d.core.Tensor(rays))["t_hit"].numpy()
        ok = np.isfinite(hit) & (hit < cfg.max_range)
        r = hit[ok] + rng.normal(0, cfg.range_noise, ok.sum())
        pts = dirs[ok] * r[:, None]  # sensor frame (the origin is the sensor)
        boxes_a = np.asarray(boxes, np.float32).reshape(-1, 7)
        out.append(Frame(pts.astype(np.float32), boxes_a, np.asarray(labels, np.int64), ego.astype(np.float32)))
    return out


def estimate_flow(src: np.ndarray, dst: np.ndarray, max_corr: float = 1.0, max_residual: float = 1.5,
                  voxel: float = 0.3) -> np.ndarray:
    """Where each ``src`` point (N, 3) lies in ``dst``'s frame: open3d point-to-point ICP for the ego
    motion, then the nearest ``dst`` point (within ``max_residual`` m) for object motion; (N, 3)."""
    o3d = import_open3d()
    a, b = o3d.geometry.PointCloud(), o3d.geometry.PointCloud()
    a.points, b.points = o3d.utility.Vector3dVector(src.astype(np.float64)), o3d.utility.Vector3dVector(dst.astype(np.float64))
    reg = o3d.pipelines.registration.registration_icp(
        a.voxel_down_sample(voxel), b.voxel_down_sample(voxel), max_corr, np.eye(4),
        o3d.pipelines.registration.TransformationEstimationPointToPoint())
    moved = src @ reg.transformation[:3, :3].T + reg.transformation[:3, 3]
    tree = o3d.geometry.KDTreeFlann(b)
    nn = np.empty_like(moved)
    for i, p in enumerate(moved):
        _, idx, _ = tree.search_knn_vector_3d(p, 1)
        nn[i] = dst[idx[0]]
    far = np.linalg.norm(nn - moved, axis=1) > max_residual
    nn[far] = moved[far]
    return nn.astype(np.float32)


def simulate_dataset(num: int, seed: int, frames: int = 2, flow_points: int = 512,
                     cfg: SimConfig | None = None) -> list[dict]:
    """``num`` sequences (cached on disk): frames t and t+1, boxes, and ``flow_points`` ICP+NN flow pairs."""
    cfg = cfg or SimConfig()
    key = hashlib.md5(json.dumps([num, seed, frames, flow_points, asdict(cfg)]).encode()).hexdigest()[:10]
    path = cache_dir() / f"lidar_sim_{num}_{seed}_{key}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        return _unpack(z, num, frames)
    items = []
    rng = np.random.default_rng(seed)
    for i in range(num):
        seq = simulate_sequence(seed * 100_003 + i, frames, cfg)
        item = {f"points{t}": f.points for t, f in enumerate(seq)}
        item.update({f"boxes{t}": f.boxes for t, f in enumerate(seq)})
        item.update({f"labels{t}": f.labels for t, f in enumerate(seq)})
        if frames > 1 and flow_points:
            src = seq[0].points[rng.choice(len(seq[0].points), flow_points, replace=False)]
            item["flow_src"], item["flow_dst"] = src, estimate_flow(src, seq[1].points)
        items.append(item)
    path.parent.mkdir(parents=True, exist_ok=True)
    flat = {f"{i}/{k}": v for i, it in enumerate(items) for k, v in it.items()}
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **flat)
    os.replace(tmp, path)
    return items


def _unpack(z, num: int, frames: int) -> list[dict]:
    items: list[dict] = [{} for _ in range(num)]
    for k in z.files:
        i, name = k.split("/", 1)
        items[int(i)][name] = z[k]
    return items
