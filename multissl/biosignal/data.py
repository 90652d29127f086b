"""Biosignal loaders and participant-level segments (MIT-BIH ECG, PPG-BP, CSV/Parquet, numpy, WFDB).

Every loader returns :class:`Segments`: fixed-length windows resampled to a target rate and z-scored
per segment and channel (Abbaspourazad et al., ICLR 2024, section 3), the participant of each
window, per-participant targets (age, sex, ...) and optional per-segment labels (arrhythmia).
Splits are always by participant (:func:`participant_split`).
"""

from __future__ import annotations

import csv
import io
import tarfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from multissl.data import resolve_data_path
from multissl.errors import DataError

# de Chazal, O'Dwyer & Reilly, IEEE TBME 2004: inter-patient split (paced records 102/104/107/217 excluded).
MITDB_DS1 = ["101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124", "201", "203",
             "205", "207", "208", "209", "215", "220", "223", "230"]
MITDB_DS2 = ["100", "103", "105", "111", "113", "117", "121", "123", "200", "202", "210", "212", "213", "214",
             "219", "221", "222", "228", "231", "232", "233", "234"]
# AAMI EC57 beat classes from MIT-BIH symbols.
AAMI = {"N": "NLRej", "S": "AaJS", "V": "VE", "F": "F", "Q": "/fQ"}


@dataclass
class Segments:
    """Windows (N, C, L) float32, participant index per window and participant-level targets."""

    x: torch.Tensor
    pid: torch.Tensor
    participants: list[str]
    fs: float
    targets: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (P,) float, NaN = missing
    target_kinds: dict[str, str] = field(default_factory=dict)  # name -> "regression" | "binary"
    segment_labels: dict[str, torch.Tensor] = field(default_factory=dict)  # name -> (N,) long
    rows: torch.Tensor | None = None  # (N,) indices of these windows in the set they were cut from

    def __len__(self) -> int:
        return self.x.shape[0]

    def subset(self, participant_idx: list[int] | torch.Tensor) -> Segments:
        """The windows of the given participants (participant indices are renumbered 0..P'-1)."""
        keep = torch.as_tensor(participant_idx, dtype=torch.long)
        remap = torch.full((len(self.participants),), -1, dtype=torch.long)
        remap[keep] = torch.arange(len(keep))
        rows = remap[self.pid] >= 0
        index = torch.nonzero(rows).flatten()
        return Segments(self.x[rows], remap[self.pid[rows]], [self.participants[i] for i in keep.tolist()], self.fs,
                        {k: v[keep] for k, v in self.targets.items()}, dict(self.target_kinds),
                        {k: v[rows] for k, v in self.segment_labels.items()},
                        index if self.rows is None else self.rows[index])


def resample(x: np.ndarray, fs_in: float, fs_out: float) -> np.ndarray:
    """Polyphase resampling along the last axis (anti-aliased), exact rational ratio."""
    if abs(fs_in - fs_out) < 1e-9:
        return x.astype(np.float32)
    from scipy.signal import resample_poly

    r = Fraction(fs_out / fs_in).limit_denominator(1000)
    return resample_poly(x, r.numerator, r.denominator, axis=-1).astype(np.float32)


def zscore(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-segment, per-channel z-scoring of (N, C, L) windows."""
    return (x - x.mean(-1, keepdim=True)) / x.std(-1, keepdim=True).clamp_min(eps)


def windows(signal: np.ndarray, length: int, stride: int | None = None) -> np.ndarray:
    """Cut (C, T) into (W, C, length) windows with ``stride`` (default: non-overlapping)."""
    stride = stride or length
    n = 0 if signal.shape[-1] < length else (signal.shape[-1] - length) // stride + 1
    if n == 0:
        return np.zeros((0, signal.shape[0], length), np.float32)
    idx = np.arange(n)[:, None] * stride + np.arange(length)[None, :]  # (W, L)
    return signal[:, idx].transpose(1, 0, 2)


# ---------------------------------------------------------------- PPG-BP (Liang et al., Sci Data 2018)
PPG_BP_TARGETS = {
    "age": ("Age(year)", "regression"), "sbp": ("Systolic Blood Pressure(mmHg)", "regression"),
    "dbp": ("Diastolic Blood Pressure(mmHg)", "regression"), "hr": ("Heart Rate(b/m)", "regression"),
    "bmi": ("BMI(kg/m^2)", "regression"),
}


def load_ppg_bp(path: str = "ppg_bp", fs: float = 125.0, seconds: float = 2.1, min_sqi: float | None = None) -> Segments:
    """PPG-BP: 219 participants x 3 fingertip PPG segments of 2.1 s at 1 kHz, resampled to ``fs``.

    ``path`` is a folder with ``ppg_bp_segments.npz`` and ``subjects.csv`` (the shipped ``ppg_bp`` or
    the staged full folder, which are the same files). Targets: age, SBP, DBP, HR, BMI (regression),
    sex (male = 1), hypertension (any stage vs normal), diabetes (binary). ``min_sqi`` drops segments
    with skewness SQI below it (``segment_sqi.csv``), as some PPG-BP papers do.
    """
    folder = resolve_data_path(path, "PPG-BP folder")
    if folder.is_file():
        folder = folder.parent
    z = np.load(folder / "ppg_bp_segments.npz", allow_pickle=False)
    raw, sid, seg = z["ppg"].astype(np.float32), z["subject_id"], z["segment"]
    keep = np.ones(len(sid), bool)
    if min_sqi is not None:
        sqi = {}
        with open(folder / "segment_sqi.csv") as f:
            for row in csv.DictReader(f):
                vals = list(row.values())
                sqi[(int(vals[0]), int(vals[1]))] = float(vals[2])
        keep = np.array([sqi.get((int(s), int(g)), np.inf) >= min_sqi for s, g in zip(sid, seg, strict=True)])
    x = resample(raw[keep], float(z["fs"]), fs)
    length = int(round(seconds * fs))
    if x.shape[-1] < length:
        raise DataError(f"PPG-BP segments are {x.shape[-1] / fs:.2f} s at {fs} Hz; data.seconds={seconds} is longer")
    x = torch.from_numpy(x[:, None, :length].copy())
    rows = {}
    with open(folder / "subjects.csv", newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            rows[int(row["subject_ID"])] = row
    participants = sorted({int(s) for s in sid[keep]})
    index = {p: i for i, p in enumerate(participants)}
    pid = torch.tensor([index[int(s)] for s in sid[keep]])

    def num(v: str) -> float:
        try:
            return float(v)
        except ValueError:
            return float("nan")

    targets = {name: torch.tensor([num(rows[p][col]) for p in participants]) for name, (col, _) in PPG_BP_TARGETS.items()}
    kinds = {name: kind for name, (_, kind) in PPG_BP_TARGETS.items()}
    targets["sex"] = torch.tensor([float(rows[p]["Sex(M/F)"].strip().lower().startswith("m")) for p in participants])
    targets["hypertension"] = torch.tensor([float(rows[p]["Hypertension"].strip().lower() != "normal")
                                            for p in participants])
    targets["diabetes"] = torch.tensor([float(bool(rows[p]["Diabetes"].strip())) for p in participants])
    kinds.update(sex="binary", hypertension="binary", diabetes="binary")
    return Segments(zscore(x), pid, [str(p) for p in participants], fs, targets, kinds)


# ---------------------------------------------------------------- MIT-BIH Arrhythmia (Moody & Mark 2001)
def _header_age_sex(header: str) -> tuple[float, float]:
    for line in header.splitlines():
        if line.startswith("#"):
            tok = line[1:].split()
            if len(tok) >= 2:
                try:
                    age = float(tok[0])
                except ValueError:
                    age = float("nan")
                age = age if age >= 0 else float("nan")  # '-1' = unknown in MIT-BIH headers
                sex = {"M": 1.0, "F": 0.0}.get(tok[1][:1].upper(), float("nan"))
                return age, sex
    return float("nan"), float("nan")


def _full_record(rec: dict, fs: float, minutes: float | None) -> dict:
    """One record of the staged lossless npz layout -> MLII lead at ``fs`` with beats at ``fs``."""
    adc = np.cumsum(rec["adc_delta"], axis=0, dtype=np.int64)
    mv = (adc - rec["baseline"]) / rec["adc_gain"]
    names = [str(s) for s in rec["sig_name"]]
    lead = names.index("MLII") if "MLII" in names else 0
    fs_in = float(rec["fs"])
    sig = mv[:, lead].astype(np.float32)
    if minutes is not None:
        sig = sig[: int(minutes * 60 * fs_in)]
    age, sex = _header_age_sex(str(rec["header"]))
    samples = np.round(rec["ann_sample"] * fs / fs_in).astype(np.int64)
    return {"ecg": resample(sig, fs_in, fs), "ann_sample": samples, "ann_symbol": rec["ann_symbol"].astype(str),
            "age": age, "sex": sex}


def read_mitdb_records(path: str, records: list[str], fs: float = 128.0, minutes: float | None = None) -> dict[str, dict]:
    """Read MIT-BIH records from the shipped subset (``mitdb-mini/mitdb_mini.npz``), the staged archive
    (``mitdb_npz.tar.xz``) or a folder of ``<record>.npz``; returns record -> {ecg, ann_sample, ...}."""
    p = resolve_data_path(path, "MIT-BIH data")
    out: dict[str, dict] = {}
    if p.is_file() and p.suffix == ".npz":
        z = np.load(p, allow_pickle=False)
        if "ecg_delta" not in z.files:
            raise DataError(f"{p} is not a multissl MIT-BIH subset (no 'ecg_delta'); pass the folder or archive")
        have = [str(r) for r in z["records"]]
        fs_in = float(z["fs"])
        for r in records:
            if r not in have:
                raise DataError(f"record {r} is not in {p} (it holds {', '.join(have)}); use the full data set path")
            i = have.index(r)
            n = int(z["lengths"][i])
            sig = np.cumsum(z["ecg_delta"][i, :n], dtype=np.int64).astype(np.float32) / float(z["gain"])
            if minutes is not None:
                sig = sig[: int(minutes * 60 * fs_in)]
            sel = z["ann_record"] == i
            samples = np.round(z["ann_sample"][sel] * fs / fs_in).astype(np.int64)
            out[r] = {"ecg": resample(sig, fs_in, fs), "ann_sample": samples,
                      "ann_symbol": z["ann_symbol"][sel].astype(str),
                      "age": float(z["age"][i]) if z["age"][i] >= 0 else float("nan"), "sex": float(z["sex"][i])}
        return out
    if p.is_file():  # the staged tar.xz: one pass over the archive
        want = {f"mitdb/{r}.npz": r for r in records}
        with tarfile.open(p, "r:*") as tar:
            for member in tar:
                if member.name in want:
                    data = tar.extractfile(member).read()
                    z = np.load(io.BytesIO(data), allow_pickle=False)
                    out[want[member.name]] = _full_record({k: z[k] for k in z.files}, fs, minutes)
    else:
        for r in records:
            f = p / f"{r}.npz" if (p / f"{r}.npz").exists() else p / "mitdb" / f"{r}.npz"
            if f.exists():
                z = np.load(f, allow_pickle=False)
                out[r] = _full_record({k: z[k] for k in z.files}, fs, minutes)
    missing = [r for r in records if r not in out]
    if missing:
        raise DataError(f"MIT-BIH records {missing} not found under {p}")
    return out


def load_mitdb(path: str = "mitdb-mini/mitdb_mini.npz", records: list[str] | None = None, fs: float = 128.0,
               seconds: float = 10.0, minutes: float | None = None) -> Segments:
    """MIT-BIH ECG (MLII lead) cut into ``seconds`` windows at ``fs``; one participant per record
    (201 and 202 are one man: they are merged). Targets: age, sex; segment labels: ``ventricular``
    / ``supraventricular`` (the window holds at least one AAMI V / S beat)."""
    records = records or MITDB_DS1 + MITDB_DS2
    recs = read_mitdb_records(path, records, fs, minutes)
    length = int(round(seconds * fs))
    xs, pids, vent, supra = [], [], [], []
    participants: list[str] = []
    ages, sexes = [], []
    for r in records:
        person = "201" if r == "202" and "201" in records else r
        if person not in participants:
            participants.append(person)
            ages.append(recs[r]["age"])
            sexes.append(recs[r]["sex"])
        w = windows(recs[r]["ecg"][None, :], length)  # (W, 1, L)
        start = np.arange(len(w)) * length
        win = np.searchsorted(start, recs[r]["ann_sample"], side="right") - 1
        for cls, out in (("V", vent), ("S", supra)):
            hit = np.isin(recs[r]["ann_symbol"], list(AAMI[cls]))
            flag = np.zeros(len(w), np.int64)
            ok = hit & (win >= 0) & (win < len(w))
            flag[win[ok]] = 1
            out.append(flag)
        xs.append(w)
        pids.append(np.full(len(w), participants.index(person)))
    x = torch.from_numpy(np.concatenate(xs).astype(np.float32))
    return Segments(zscore(x), torch.from_numpy(np.concatenate(pids)), participants, fs,
                    {"age": torch.tensor(ages), "sex": torch.tensor(sexes)}, {"age": "regression", "sex": "binary"},
                    {"ventricular": torch.from_numpy(np.concatenate(vent)),
                     "supraventricular": torch.from_numpy(np.concatenate(supra))})


# ---------------------------------------------------------------- generic layouts
def load_table_signals(path: str, participant_column: str, value_columns: list[str], fs_in: float, fs: float,
                       seconds: float, time_column: str | None = None,
                       target_columns: tuple[str, ...] = ()) -> Segments:
    """CSV / Parquet in long format (one row per sample, a participant column, one column per channel,
    optionally a time column to sort by); each participant's series is cut into windows. Target
    columns (constant per participant) become regression targets."""
    import pandas as pd

    p = resolve_data_path(path, "signal table")
    frame = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    for c in [participant_column, *value_columns, *target_columns] + ([time_column] if time_column else []):
        if c not in frame.columns:
            raise DataError(f"column '{c}' not in {p} (columns: {list(frame.columns)})")
    if time_column:
        frame = frame.sort_values([participant_column, time_column], kind="stable")
    length = int(round(seconds * fs))
    xs, pids, participants, targets = [], [], [], {c: [] for c in target_columns}
    for person, g in frame.groupby(participant_column, sort=True):
        sig = resample(g[value_columns].to_numpy(np.float32).T, fs_in, fs)
        w = windows(sig, length)
        if len(w) == 0:
            continue
        participants.append(str(person))
        for c in target_columns:
            targets[c].append(float(g[c].iloc[0]))
        xs.append(w)
        pids.append(np.full(len(w), len(participants) - 1))
    if not xs:
        raise DataError(f"no participant in {p} has {seconds} s of signal")
    x = torch.from_numpy(np.concatenate(xs).astype(np.float32))
    return Segments(zscore(x), torch.from_numpy(np.concatenate(pids)), participants, fs,
                    {c: torch.tensor(v) for c, v in targets.items()}, {c: "regression" for c in target_columns})


def load_array_signals(path: str, fs_in: float, fs: float, seconds: float) -> Segments:
    """``.npz`` with ``x`` (N, C, T) segments and ``participant`` (N,) ids; optional ``target_<name>``
    arrays of shape (N,) (constant per participant) become regression targets."""
    p = resolve_data_path(path, "signal arrays")
    z = np.load(p, allow_pickle=False)
    if "x" not in z.files or "participant" not in z.files:
        raise DataError(f"{p} needs arrays 'x' (N, C, T) and 'participant' (N,)")
    x = resample(z["x"].astype(np.float32), fs_in, fs)[..., : int(round(seconds * fs))]
    ids = z["participant"].astype(str)
    participants = sorted(set(ids.tolist()))
    index = {q: i for i, q in enumerate(participants)}
    pid = torch.tensor([index[q] for q in ids])
    targets = {}
    for k in z.files:
        if k.startswith("target_"):
            first = {q: float(v) for q, v in zip(ids[::-1], z[k][::-1], strict=True)}
            targets[k[7:]] = torch.tensor([first[q] for q in participants])
    return Segments(zscore(torch.from_numpy(np.ascontiguousarray(x))), pid, participants, fs, targets,
                    {k: "regression" for k in targets})


def load_wfdb_records(folder: str, records: list[str], fs: float, seconds: float, channel: int = 0) -> Segments:
    """WFDB records (``.hea`` + ``.dat``) through the optional ``wfdb`` package, one participant per record."""
    try:
        import wfdb
    except ModuleNotFoundError:
        raise DataError("reading WFDB records needs the optional extra: pip install 'multissl[biosignal-wfdb]'") from None
    xs, pids = [], []
    for i, r in enumerate(records):
        rec = wfdb.rdrecord(str(Path(folder) / r))
        sig = resample(rec.p_signal[:, channel].astype(np.float32), float(rec.fs), fs)
        w = windows(sig[None, :], int(round(seconds * fs)))
        xs.append(w)
        pids.append(np.full(len(w), i))
    x = torch.from_numpy(np.concatenate(xs).astype(np.float32))
    return Segments(zscore(x), torch.from_numpy(np.concatenate(pids)), list(records), fs)


# ---------------------------------------------------------------- splits and datasets
def participant_split(n_participants: int, fractions: tuple[float, float, float], seed: int,
                      stratify: torch.Tensor | None = None) -> tuple[list[int], list[int], list[int]]:
    """Random train / val / test split of participant indices (optionally stratified by a label)."""
    g = torch.Generator().manual_seed(seed)
    groups = [torch.arange(n_participants)] if stratify is None else [
        torch.nonzero(stratify == v).flatten() for v in torch.unique(stratify)]
    tr, va, te = [], [], []
    for grp in groups:
        perm = grp[torch.randperm(len(grp), generator=g)].tolist()
        a = int(round(fractions[0] * len(perm)))
        b = a + int(round(fractions[1] * len(perm)))
        tr += perm[:a]
        va += perm[a:b]
        te += perm[b:]
    return sorted(tr), sorted(va), sorted(te)


class ParticipantPairs(Dataset):
    """Item i: segment i and another segment of the same participant (the participant-level positive
    pair of Abbaspourazad et al. 2024); a participant with one segment pairs it with itself."""

    def __init__(self, segments: Segments) -> None:
        self.x, self.pid = segments.x, segments.pid
        order = torch.argsort(self.pid, stable=True)
        counts = torch.bincount(self.pid, minlength=int(self.pid.max()) + 1)
        self.order, self.counts = order, counts
        self.starts = torch.cumsum(counts, 0) - counts
        self.rank = torch.empty_like(order)
        self.rank[order] = torch.arange(len(order)) - self.starts[self.pid[order]]

    def __len__(self) -> int:
        return self.x.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        p = int(self.pid[i])
        n = int(self.counts[p])
        if n > 1:  # uniform over the participant's OTHER segments
            k = int(torch.randint(0, n - 1, ()))
            k = k + (k >= int(self.rank[i]))
            j = int(self.order[int(self.starts[p]) + k])
        else:
            j = i
        return {"a": self.x[i], "b": self.x[j], "pid": self.pid[i]}

