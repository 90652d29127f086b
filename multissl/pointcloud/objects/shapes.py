"""A procedural labelled shape set: ten classes with confusable pairs, the offline stand-in for
ModelNet40 / ScanObjectNN (which cannot be obtained here).

Classes: box, sphere, cylinder, cone, torus, capsule, table, chair, lamp, mug. Every cloud has random
part proportions, a random anisotropic scale (0.6-1.4 per axis), a random rotation about the up axis
(z), 1-3 % Gaussian surface noise and 10-30 % of its points removed by a random half-space (a
ScanObjectNN-like partial view); confusable pairs: cylinder/capsule, table/chair, cone/lamp. Surface
points are sampled by area, in numpy, deterministically from ``seed``; the set is generated on first
use and cached as float16 npz (not shipped).
"""

from __future__ import annotations

import os

import numpy as np

from multissl.pointcloud.cache import cache_dir

CLASSES = ["box", "sphere", "cylinder", "cone", "torus", "capsule", "table", "chair", "lamp", "mug"]
Part = tuple[str, dict]


# -- surface samplers: each returns (n, 3) points uniformly on the part's area -------------------
def _area(kind: str, p: dict) -> float:
    if kind == "box":
        sx, sy, sz = p["size"]
        return 2 * (sx * sy + sy * sz + sx * sz)
    if kind == "sphere":
        return 4 * np.pi * p["r"] ** 2
    if kind == "cyl":
        return 2 * np.pi * p["r"] * p["h"] + np.pi * p["r"] ** 2 * (p.get("bottom", 1) + p.get("top", 1))
    if kind == "cone":
        return np.pi * p["r"] * np.hypot(p["r"], p["h"]) + np.pi * p["r"] ** 2
    if kind == "torus":
        return 4 * np.pi**2 * p["R"] * p["r"]
    raise ValueError(kind)


def _sample(kind: str, p: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "box":
        s = np.asarray(p["size"])
        areas = np.array([s[1] * s[2], s[0] * s[2], s[0] * s[1]])
        axis = rng.choice(3, n, p=areas / areas.sum())
        x = (rng.random((n, 3)) - 0.5) * s
        x[np.arange(n), axis] = np.where(rng.random(n) < 0.5, -0.5, 0.5) * s[axis]
    elif kind == "sphere":
        x = rng.standard_normal((n, 3))
        x = p["r"] * x / np.linalg.norm(x, axis=1, keepdims=True)
    elif kind == "cyl":
        r, h = p["r"], p["h"]
        a = np.array([2 * np.pi * r * h, np.pi * r**2 * p.get("bottom", 1), np.pi * r**2 * p.get("top", 1)])
        which = rng.choice(3, n, p=a / a.sum())
        t = rng.random(n) * 2 * np.pi
        rad = np.where(which == 0, r, r * np.sqrt(rng.random(n)))
        z = np.where(which == 0, (rng.random(n) - 0.5) * h, np.where(which == 1, -h / 2, h / 2))
        x = np.stack([rad * np.cos(t), rad * np.sin(t), z], 1)
    elif kind == "cone":  # base at z=-h/2, apex at z=+h/2
        r, h = p["r"], p["h"]
        a = np.array([np.pi * r * np.hypot(r, h), np.pi * r**2])
        side = rng.random(n) < a[0] / a.sum()
        t = rng.random(n) * 2 * np.pi
        f = np.sqrt(rng.random(n))  # distance from the apex (area grows linearly)
        rad = np.where(side, r * f, r * np.sqrt(rng.random(n)))
        z = np.where(side, h / 2 - f * h, -h / 2)
        x = np.stack([rad * np.cos(t), rad * np.sin(t), z], 1)
    elif kind == "torus":  # in the xy plane; rejection on the tube angle for uniform area
        big, r = p["R"], p["r"]
        u = rng.random(3 * n) * 2 * np.pi
        v = rng.random(3 * n) * 2 * np.pi
        keep = rng.random(3 * n) < (big + r * np.cos(v)) / (big + r)
        u, v = u[keep][:n], v[keep][:n]
        x = np.stack([(big + r * np.cos(v)) * np.cos(u), (big + r * np.cos(v)) * np.sin(u), r * np.sin(v)], 1)
    else:
        raise ValueError(kind)
    if "rotx" in p:  # rotate about x (e.g. a vertical mug handle)
        c, s = np.cos(p["rotx"]), np.sin(p["rotx"])
        x = x @ np.array([[1, 0, 0], [0, c, -s], [0, s, c]]).T
    return x + np.asarray(p.get("at", (0.0, 0.0, 0.0)))


def _parts(label: int, rng: np.random.Generator) -> list[Part]:
    u = rng.uniform
    name = CLASSES[label]
    if name == "box":
        return [("box", {"size": (u(0.6, 1.4), u(0.6, 1.4), u(0.6, 1.4))})]
    if name == "sphere":
        return [("sphere", {"r": 1.0})]
    if name == "cylinder":
        return [("cyl", {"r": u(0.3, 0.6), "h": u(1.2, 2.0)})]
    if name == "capsule":
        r, h = u(0.3, 0.6), u(0.8, 1.4)
        return [("cyl", {"r": r, "h": h, "bottom": 0, "top": 0}), ("sphere", {"r": r, "at": (0, 0, h / 2), "hemi": 1}),
                ("sphere", {"r": r, "at": (0, 0, -h / 2), "hemi": -1})]
    if name == "cone":
        return [("cone", {"r": u(0.5, 0.9), "h": u(1.0, 2.0)})]
    if name == "torus":
        return [("torus", {"R": u(0.7, 1.0), "r": u(0.15, 0.35)})]
    if name in ("table", "chair"):
        w, d, t = u(1.2, 2.0), u(0.8, 1.4), u(0.05, 0.12)
        leg_h, leg_r = u(0.6, 1.0) if name == "table" else u(0.4, 0.6), u(0.04, 0.08)
        if name == "chair":
            w = d = u(0.8, 1.1)
        parts: list[Part] = [("box", {"size": (w, d, t), "at": (0, 0, leg_h)})]
        for sx in (-1, 1):
            for sy in (-1, 1):
                parts.append(("cyl", {"r": leg_r, "h": leg_h, "at": (sx * (w / 2 - 0.1), sy * (d / 2 - 0.1), leg_h / 2)}))
        if name == "chair":
            back = u(0.6, 1.0)
            parts.append(("box", {"size": (w, t, back), "at": (0, d / 2, leg_h + back / 2)}))
        return parts
    if name == "lamp":
        pole = u(1.0, 1.6)
        return [("cyl", {"r": u(0.35, 0.5), "h": 0.06, "at": (0, 0, 0)}),
                ("cyl", {"r": u(0.03, 0.06), "h": pole, "at": (0, 0, pole / 2)}),
                ("cone", {"r": u(0.35, 0.55), "h": u(0.3, 0.5), "at": (0, 0, pole)})]
    if name == "mug":
        r, h = u(0.4, 0.6), u(0.8, 1.3)
        return [("cyl", {"r": r, "h": h, "top": 0}),
                ("torus", {"R": u(0.22, 0.32), "r": u(0.04, 0.08), "rotx": np.pi / 2, "at": (r + 0.15, 0, 0)})]
    raise ValueError(name)


def sample_shape(label: int, n: int, rng: np.random.Generator, raw: int = 2048) -> np.ndarray:
    """One cloud (n, 3) of class ``label``: parts, anisotropic scale, z-rotation, noise, half-space crop."""
    parts = _parts(label, rng)
    areas = np.array([_area(k, p) * (0.5 if "hemi" in p else 1.0) for k, p in parts])
    counts = rng.multinomial(raw, areas / areas.sum())
    chunks = []
    for (kind, p), c in zip(parts, counts, strict=True):
        if "hemi" in p:  # a hemisphere: sample a sphere, fold the wrong half over
            x = _sample(kind, {**p, "at": (0, 0, 0)}, int(c), rng)
            x[:, 2] = p["hemi"] * np.abs(x[:, 2])
            chunks.append(x + np.asarray(p["at"]))
        else:
            chunks.append(_sample(kind, p, int(c), rng))
    x = np.concatenate(chunks)
    x = x * rng.uniform(0.6, 1.4, 3)  # anisotropic scale
    a = rng.uniform(0, 2 * np.pi)
    c, s = np.cos(a), np.sin(a)
    x = x @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]).T
    x = x - x.mean(0)
    x = x / np.linalg.norm(x, axis=1).max()
    x = x + rng.normal(0, rng.uniform(0.01, 0.03), x.shape)  # surface noise
    direction = rng.standard_normal(3)
    proj = x @ (direction / np.linalg.norm(direction))
    keep = proj <= np.quantile(proj, 1 - rng.uniform(0.1, 0.3))  # remove 10-30 % by a half-space
    x = x[keep]
    x = x[rng.choice(len(x), n, replace=len(x) < n)]
    x = x - x.mean(0)
    return (x / np.linalg.norm(x, axis=1).max()).astype(np.float32)


def generate(num_per_class: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(C * num_per_class, n, 3) clouds and labels, class-interleaved, from one seeded generator."""
    rng = np.random.default_rng(seed)
    labels = np.tile(np.arange(len(CLASSES)), num_per_class)
    return np.stack([sample_shape(int(y), n, rng) for y in labels]), labels.astype(np.int64)


def load_shapes(split: str = "train", num_per_class: int | None = None, num_points: int = 1024,
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The procedural set's ``train`` (300 per class, seed) or ``test`` (100 per class, seed + 1) split.

    Generated on first use and cached under ``$MULTISSL_CACHE/pointcloud`` (default ~/.cache/multissl);
    train and test come from different seeds, so they are disjoint draws.
    """
    full = {"train": 300, "test": 100}[split]
    count = num_per_class or full
    gen_points = max(num_points, 1024)
    per = max(count, full)
    path = cache_dir() / f"shapes_{split}_{per}x{gen_points}_seed{seed}.npz"
    if path.exists():
        z = np.load(path, allow_pickle=False)
        pts, labels = z["points"], z["labels"]
    else:
        pts, labels = generate(per, gen_points, seed if split == "train" else seed + 1)
        pts = pts.astype(np.float16)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez_compressed(tmp, points=pts, labels=labels)
        os.replace(tmp, path)
    # the first count * C clouds of a larger draw are exactly the smaller draw (class-interleaved,
    # sequential generator); the points of a cloud are in random order, so a prefix is a random subset
    pts = pts[: count * len(CLASSES), :num_points].astype(np.float32)
    return pts - pts.mean(1, keepdims=True), labels[: count * len(CLASSES)]
