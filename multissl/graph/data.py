"""Graph and interaction data: node-classification graphs (Planetoid pickles, PyG ``Data`` files,
edge-list + feature folders) and user-item interaction sets (LightGCN's adjacency ``.npz`` or
``user item item ...`` lines, or ``user item [rating]`` pairs), with a seeded validation hold-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from multissl.data import resolve_data_path
from multissl.errors import DataError

# ---------------------------------------------------------------------------------------------
# Node-classification graphs
# ---------------------------------------------------------------------------------------------


@dataclass
class NodeGraph:
    """One graph: features (N, F), edge_index (2, E), labels (N,) (-1 = unknown) and boolean split masks."""

    x: torch.Tensor
    edge_index: torch.Tensor
    y: torch.Tensor
    train_mask: torch.Tensor
    val_mask: torch.Tensor
    test_mask: torch.Tensor

    @property
    def num_nodes(self) -> int:
        return self.x.shape[0]

    @property
    def num_classes(self) -> int:
        return int(self.y.max()) + 1


def _planetoid_prefix(folder: Path, name: str | None) -> str:
    if name:
        return name.lower()
    found = sorted(p.name.split(".")[1] for p in folder.glob("ind.*.graph"))
    if len(found) != 1:
        raise DataError(f"{folder} holds Planetoid files of {found or 'no data set'}; set data.name (e.g. cora)")
    return found[0]


def _refuse_lfs_pointers(files) -> None:
    """A Git LFS pointer (a ~130-byte text stub that a clone without git-lfs leaves in place of the data, as
    in some public copies of ind.pubmed.*) is refused by name, with the size of the real file it stands for."""
    stubs = []
    for f in files:
        f = Path(f)
        if f.is_file() and f.stat().st_size < 1024:
            head = f.read_bytes()[:200]
            if head.startswith(b"version https://git-lfs"):
                size = next((ln.split()[1] for ln in head.decode("ascii", "replace").splitlines()
                             if ln.startswith("size ")), "?")
                stubs.append(f"{f.name} (stands for {size} bytes)")
    if stubs:
        raise DataError(f"{Path(files[0]).parent}: {', '.join(stubs)} are Git LFS pointers, not the data; fetch the "
                        "real files (git lfs pull in that clone, or torch_geometric's Planetoid download, see "
                        "docs/notes/graph.md) and point data.path at them")


def _random_masks(n: int, fractions: tuple[float, float, float], seed: int) -> tuple[torch.Tensor, ...]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    a, b = round(fractions[0] * n), round((fractions[0] + fractions[1]) * n)
    masks = []
    for part in (perm[:a], perm[a:b], perm[b:]):
        m = torch.zeros(n, dtype=torch.bool)
        m[part] = True
        masks.append(m)
    return tuple(masks)


def _read_array(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        import scipy.sparse as sp

        return sp.load_npz(path).toarray()
    return np.loadtxt(path, delimiter="," if path.suffix == ".csv" else None, ndmin=2)


def _first(folder: Path, stem: str) -> Path | None:
    for ext in (".npy", ".npz", ".csv", ".txt", ".tsv"):
        if (folder / f"{stem}{ext}").exists():
            return folder / f"{stem}{ext}"
    return None


def _mentions(path: Path, name: bytes) -> bool:
    """Whether a torch.save zip's pickle names ``name`` (read as bytes, never unpickled)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return any(name in z.read(n) for n in z.namelist() if n.endswith("data.pkl"))
    except (OSError, zipfile.BadZipFile):
        return False


def _safe_torch_load(path: Path):
    """``torch.load(weights_only=True)`` allowing PyG's ``Data`` classes (never arbitrary pickles)."""
    from torch_geometric.data import Data
    from torch_geometric.data.data import DataEdgeAttr, DataTensorAttr
    from torch_geometric.data.storage import EdgeStorage, GlobalStorage, NodeStorage

    try:
        with torch.serialization.safe_globals([Data, DataEdgeAttr, DataTensorAttr, GlobalStorage, NodeStorage,
                                               EdgeStorage]):
            return torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - any unpickling refusal becomes a user-facing DataError
        import re

        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # no terminal colour codes in our messages
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        what = (f"it holds a {found.group(1)}, which is not read without running pickled code" if found
                else f"{type(exc).__name__}: {text.strip().splitlines()[0] if text.strip() else 'unreadable'}")
        hint = (" (a heterogeneous graph, HeteroData: save one node type's graph as a Data, e.g. "
                "hetero.to_homogeneous())" if _mentions(path, b"HeteroData") else "")
        raise DataError(f"Cannot load {path} safely: {what}{hint}. Save a PyG Data object or a dict of tensors "
                        "{'x', 'edge_index', 'y', ...} with torch.save") from None


def load_node_graph(path: str, name: str | None = None, fractions: tuple[float, float, float] = (0.1, 0.1, 0.8),
                    split_seed: int = 0) -> NodeGraph:
    """Read a graph for node classification.

    ``path`` is one of: a folder of Planetoid pickles ``ind.<name>.{x,y,tx,ty,allx,ally,graph,test.index}``
    (read by PyG's ``read_planetoid_data``, public split; the Planetoid format is a Python pickle, so
    it is read by :mod:`multissl.safe_pickle`, which admits only arrays, sparse matrices and containers
    and refuses a file that asks to run code); a ``.pt`` file holding a PyG ``Data`` object
    or a dict with ``x``, ``edge_index`` and optional ``y`` / ``*_mask``; or a folder with
    ``edges.{txt,csv,npy}`` (two node ids per row), ``features.{npy,npz,csv,txt}`` and optional
    ``labels.{npy,txt,csv}``. Missing masks get a seeded random split with ``fractions``.
    """
    p = resolve_data_path(path, "graph")
    if p.is_dir() and any(p.glob("ind.*.graph")):
        from multissl.safe_pickle import read_planetoid

        prefix = _planetoid_prefix(p, name)
        if not (p / f"ind.{prefix}.graph").is_file():
            have = sorted(f.name.split(".")[1] for f in p.glob("ind.*.graph"))
            raise DataError(
                f"{p} holds the Planetoid files of {have}, not ind.{prefix}.*. Get them once (online) with "
                f"torch_geometric: Planetoid(ROOT, '{prefix.capitalize() if prefix != 'pubmed' else 'PubMed'}') "
                f"writes ROOT/<name>/raw/ind.{prefix}.*; then give data.path=ROOT/<name>/raw (or put the files "
                f"in $MULTISSL_DATA/planetoid and give data.path='$MULTISSL_DATA/planetoid')")
        _refuse_lfs_pointers(sorted(p.glob(f"ind.{prefix}.*")))
        data = read_planetoid(p, prefix)
        return NodeGraph(data.x, data.edge_index, data.y, data.train_mask, data.val_mask, data.test_mask)
    if p.is_file() and p.suffix in (".pt", ".pth"):
        obj = _safe_torch_load(p)
        if isinstance(obj, tuple):  # InMemoryDataset's (data, slices[, ...]) layout
            obj = obj[0]
        get = (lambda k: obj.get(k)) if isinstance(obj, dict) else (lambda k: getattr(obj, k, None))
        x, ei, y = get("x"), get("edge_index"), get("y")
        if x is None or ei is None:
            raise DataError(f"{p} holds no 'x' and 'edge_index'; save a torch_geometric Data or such a dict")
        n = x.shape[0]
        y = torch.full((n,), -1, dtype=torch.long) if y is None else y.long().view(-1)
        masks = [get(f"{s}_mask") for s in ("train", "val", "test")]
        if any(m is None for m in masks):
            masks = list(_random_masks(n, fractions, split_seed))
        return NodeGraph(x.float(), ei.long(), y, *[m.bool() for m in masks])
    if p.is_dir():
        edges_f, feats_f, labels_f = _first(p, "edges"), _first(p, "features"), _first(p, "labels")
        if edges_f is None or feats_f is None:
            raise DataError(f"{p}: expected Planetoid files ind.<name>.*, or edges.(txt|csv|npy) + "
                            "features.(npy|npz|csv|txt) [+ labels.(npy|txt)]")
        x = torch.as_tensor(_read_array(feats_f), dtype=torch.float32)
        edges = torch.as_tensor(_read_array(edges_f), dtype=torch.long)
        if edges.shape[1] != 2:
            raise DataError(f"{edges_f}: expected two node ids per row, got {edges.shape[1]} columns")
        n = x.shape[0]
        y = (torch.as_tensor(_read_array(labels_f), dtype=torch.long).view(-1) if labels_f is not None
             else torch.full((n,), -1, dtype=torch.long))
        return NodeGraph(x, edges.t().contiguous(), y, *_random_masks(n, fractions, split_seed))
    raise DataError(f"Cannot read a graph from {p}: give a Planetoid folder, a .pt Data file or an edge-list folder")


def preprocess(graph: NodeGraph, row_normalize: bool = True) -> NodeGraph:
    """GraphMAE's preprocessing: row-normalised features, undirected edges, self-loops removed then added."""
    from torch_geometric.utils import add_self_loops, remove_self_loops, to_undirected

    x = graph.x
    if row_normalize:
        x = x / x.sum(1, keepdim=True).clamp_min(1e-12)
    ei = to_undirected(graph.edge_index, num_nodes=graph.num_nodes)
    ei, _ = remove_self_loops(ei)
    ei, _ = add_self_loops(ei, num_nodes=graph.num_nodes)
    return NodeGraph(x, ei, graph.y, graph.train_mask, graph.val_mask, graph.test_mask)


class WholeGraph(Dataset):
    """A one-item dataset: every training step is one full-graph step (the method holds the graph)."""

    def __len__(self) -> int:
        return 1

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.tensor(i)


# ---------------------------------------------------------------------------------------------
# User-item interactions
# ---------------------------------------------------------------------------------------------


@dataclass
class Interactions:
    """Implicit feedback: (user, item) pairs of each split, over ``num_users`` x ``num_items``."""

    num_users: int
    num_items: int
    train: torch.Tensor  # (P, 2) long
    val: torch.Tensor  # (V, 2) long (held out from the given train set)
    test: torch.Tensor  # (T, 2) long
    user_ids: np.ndarray | None = None  # raw id of each user index (text files; None: ids used as given)
    item_ids: np.ndarray | None = None


def _read_pairs(path: Path, fmt: str = "auto") -> tuple[np.ndarray, np.ndarray | None]:
    """Raw (P, 2) id strings and the optional weight column, from ``user item item ...`` lines
    (LightGCN's format, ``fmt="lists"``) or ``user item [weight [timestamp]]`` lines (``fmt="pairs"``).
    ``auto``: pairs when every line has the same 2-4 columns (or a decimal point), else lists. Ids may be
    any strings without spaces."""
    tokens = [ln.replace(",", " ").replace("\t", " ").split() for ln in path.read_text().splitlines()]
    tokens = [t for t in tokens if t]
    if not tokens:
        return np.zeros((0, 2), dtype=str), None
    if fmt == "auto":
        widths = {len(t) for t in tokens}
        fmt = "pairs" if (len(widths) == 1 and widths <= {2, 3, 4}) or any("." in t[-1] for t in tokens[:100]) \
            else "lists"
    if fmt == "pairs":
        if min(len(t) for t in tokens) < 2:
            raise DataError(f"{path}: a 'user item [weight]' line has fewer than two columns")
        pairs = np.array([[t[0], t[1]] for t in tokens], dtype=str)
        weights = None
        if all(len(t) >= 3 for t in tokens):
            try:
                weights = np.array([float(t[2]) for t in tokens])
            except ValueError:
                weights = None
        return pairs, weights
    rows = [np.stack([np.full(len(t) - 1, t[0]), np.array(t[1:])], 1) for t in tokens if len(t) > 1]
    return (np.concatenate(rows).astype(str) if rows else np.zeros((0, 2), dtype=str)), None


def _id_index(raw: np.ndarray) -> np.ndarray:
    """Sorted distinct ids (integers sorted numerically when every id is an integer, else strings)."""
    try:
        return np.unique(raw.astype(np.int64))
    except ValueError:
        return np.unique(raw)


def _lookup(ids: np.ndarray, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of each raw id in the sorted ``ids``, whether it is there)."""
    vals = raw
    if ids.dtype.kind == "i":
        try:
            vals = raw.astype(np.int64)
        except ValueError:  # a string id among integer ids: never seen in training
            vals = np.array([int(v) if v.lstrip("-").isdigit() else -(1 << 62) for v in raw], dtype=np.int64)
    if not len(ids):
        return np.zeros(len(raw), np.int64), np.zeros(len(raw), bool)
    pos = np.searchsorted(ids, vals).clip(max=len(ids) - 1)
    return pos.astype(np.int64), ids[pos] == vals


def _unique_pairs(pairs: np.ndarray) -> np.ndarray:
    return np.unique(pairs, axis=0) if len(pairs) else pairs


def holdout(pairs: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Move a seeded random ``fraction`` of each user's pairs to validation, keeping >= 1 per user in train."""
    if fraction <= 0:
        return pairs, pairs.new_zeros((0, 2))
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(pairs), generator=g)
    shuffled = pairs[perm]
    order = torch.argsort(shuffled[:, 0], stable=True)  # group by user, random order inside a user
    grouped = shuffled[order]
    counts = torch.bincount(grouped[:, 0])
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(grouped)) - starts[grouped[:, 0]]  # position inside the user's group
    n_val = (counts.double() * fraction).floor().long().clamp(max=(counts - 1).clamp_min(0))
    to_val = rank < n_val[grouped[:, 0]]
    return grouped[~to_val], grouped[to_val]


def load_interactions(path: str, test_path: str | None = None, val_fraction: float = 0.1,
                      split_seed: int = 0, fmt: str = "auto", min_weight: float | None = None) -> Interactions:
    """Read train (and test) interactions; hold out ``val_fraction`` of each user's train pairs.

    ``path``: a LightGCN ``s_adj_mat.npz`` (symmetric (U+I)x(U+I) adjacency whose user-item block is the
    train set; users are the rows up to the first item row, found from ``test_path`` / the block shape),
    a folder with ``train.txt`` [+ ``test.txt``], or a text file of ``user item item ...`` lines or
    ``user item [weight]`` pairs (``fmt``: auto / lists / pairs). ``test_path`` defaults to ``test.txt``
    beside ``path``.

    Text files: ids may be strings; they are remapped to 0..U-1 / 0..I-1 over the users and items WITH a
    training interaction (``user_ids`` / ``item_ids`` keep the raw ids, in index order), and test pairs
    of users or items never seen in training are dropped with a printed count (they could only be
    guessed). The weight column is ignored unless ``min_weight`` is set (pairs below it are dropped).
    """
    p = resolve_data_path(path, "interactions")
    if p.is_dir():
        if test_path is None and (p / "test.txt").exists():
            test_path = str(p / "test.txt")
        p = p / "train.txt" if (p / "train.txt").exists() else p / "s_adj_mat.npz"
        if not p.exists():
            raise DataError(f"{p.parent}: expected train.txt or s_adj_mat.npz")
    if test_path is None and (p.parent / "test.txt").exists():
        test_path = str(p.parent / "test.txt")
    raw_test, test_w = (_read_pairs(resolve_data_path(test_path, "test interactions"), fmt) if test_path
                        else (np.zeros((0, 2), dtype=str), None))
    user_ids = item_ids = None
    if p.suffix == ".npz":
        import scipy.sparse as sp

        test = raw_test.astype(np.int64) if len(raw_test) else np.zeros((0, 2), np.int64)
        adj = sp.load_npz(p).tocsr()
        n = adj.shape[0]
        # users are the rows whose neighbours all lie after them: the first row with a neighbour < itself
        coo = adj.tocoo()
        below = coo.row[coo.col < coo.row]
        num_users = int(below.min()) if len(below) else n
        if len(test):
            num_users = max(num_users, int(test[:, 0].max()) + 1)
        block = adj[:num_users, num_users:].tocoo()
        train = np.stack([block.row, block.col], 1).astype(np.int64)
        num_items = n - num_users
    else:
        raw_train, train_w = _read_pairs(p, fmt)
        if min_weight is not None:
            if train_w is None:
                raise DataError(f"{p}: data.min_weight is set but the file has no numeric weight column")
            raw_train = raw_train[train_w >= min_weight]
            if test_w is not None:
                raw_test = raw_test[test_w >= min_weight]
        if not len(raw_train):
            raise DataError(f"{p}: no training interactions")
        user_ids, item_ids = _id_index(raw_train[:, 0]), _id_index(raw_train[:, 1])
        train = np.stack([_lookup(user_ids, raw_train[:, 0])[0], _lookup(item_ids, raw_train[:, 1])[0]], 1)
        test = np.zeros((0, 2), np.int64)
        if len(raw_test):
            (tu, ku), (ti, ki) = _lookup(user_ids, raw_test[:, 0]), _lookup(item_ids, raw_test[:, 1])
            keep = ku & ki
            if not keep.all():
                print(f"note: {int((~keep).sum())} of {len(raw_test)} test pairs have a user or item with no "
                      "training interaction and are left out (they cannot be ranked from training data)")
            test = np.stack([tu[keep], ti[keep]], 1)
        num_users, num_items = len(user_ids), len(item_ids)
    if not len(train):
        raise DataError(f"{p}: no training interactions")
    train_t = torch.from_numpy(_unique_pairs(train))
    tr, va = holdout(train_t, val_fraction, split_seed)
    return Interactions(num_users, num_items, tr, va, torch.from_numpy(_unique_pairs(test)), user_ids, item_ids)


def csr_of(pairs: torch.Tensor, num_users: int) -> tuple[torch.Tensor, torch.Tensor]:
    """CSR (indptr (U+1,), items) of each user's items, from (P, 2) pairs."""
    order = torch.argsort(pairs[:, 0] * (pairs[:, 1].max() + 1 if len(pairs) else 1) + pairs[:, 1])
    sorted_pairs = pairs[order]
    counts = torch.bincount(sorted_pairs[:, 0], minlength=num_users)
    indptr = torch.zeros(num_users + 1, dtype=torch.long)
    indptr[1:] = torch.cumsum(counts, 0)
    return indptr, sorted_pairs[:, 1].contiguous()


def pair_keys(pairs: torch.Tensor, num_items: int) -> torch.Tensor:
    """Sorted int64 keys user * num_items + item, for vectorised membership tests (searchsorted)."""
    return torch.sort(pairs[:, 0] * num_items + pairs[:, 1]).values


def contains(sorted_keys: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Whether each key is in ``sorted_keys`` (bool, same shape as ``keys``)."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def sample_negatives(users: torch.Tensor, sorted_keys: torch.Tensor, num_items: int, max_tries: int = 20,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """One uniform negative item per user, resampled (vectorised) while it is a known positive."""
    neg = torch.randint(0, num_items, users.shape, device=users.device, generator=generator)
    for _ in range(max_tries):
        bad = contains(sorted_keys, users * num_items + neg)
        if not bool(bad.any()):
            break
        neg = torch.where(bad, torch.randint(0, num_items, users.shape, device=users.device, generator=generator), neg)
    return neg


class PairIndexDataset(Dataset):
    """Indices 0..P-1 of training pairs: a batch is a LongTensor of pair ids (the method holds the pairs)."""

    def __init__(self, num_pairs: int) -> None:
        self.n = num_pairs

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i
