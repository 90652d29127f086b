"""Loaders, participant-disjoint splits and the participant-level positive pairs, on shipped data."""

import numpy as np
import pandas as pd
import torch

from multissl.biosignal.data import (
    ParticipantPairs,
    load_array_signals,
    load_mitdb,
    load_ppg_bp,
    load_table_signals,
    participant_split,
)
from multissl.biosignal.features import beat_features
from multissl.biosignal.make_subset import RECORDS
from multissl.biosignal.tasks import BioData, split_segments


def test_ppg_bp_segments_targets_and_zscoring():
    s = load_ppg_bp("ppg_bp", fs=64.0, seconds=2.1)
    assert s.x.shape == (657, 1, 134) and len(s.participants) == 219
    assert torch.allclose(s.x.mean(-1), torch.zeros(657, 1), atol=1e-4)
    assert torch.bincount(s.pid).eq(3).all()
    assert abs(float(s.targets["age"].mean()) - 57.17) < 0.01 and int(s.targets["sex"].sum()) == 104
    assert int(s.targets["hypertension"].sum()) == 219 - 80


def test_mitdb_subset_windows_and_arrhythmia_labels():
    s = load_mitdb("mitdb-mini/mitdb_mini.npz", RECORDS[:4], fs=128.0, seconds=10.0)
    assert s.x.shape == (4 * 30, 1, 1280) and s.participants == RECORDS[:4]
    assert s.segment_labels["ventricular"].sum() > 0  # 106 and 119 have many PVCs
    hr = beat_features(s.x, 128.0)[:, 0]
    assert 40 < float(hr.nanmedian()) < 120  # R-peak heart rate is physiological


def test_splits_are_participant_disjoint():
    s = load_ppg_bp("ppg_bp")
    parts = split_segments(s, BioData())
    names = [set(p.participants) for p in parts.values()]
    assert not (names[0] & names[1] or names[0] & names[2] or names[1] & names[2])
    assert sum(len(n) for n in names) == 219
    m = load_mitdb("mitdb-mini/mitdb_mini.npz", RECORDS, 128.0, 10.0)
    parts = split_segments(m, BioData(source="mitdb", split="mitdb_ds", val_participants=3, stratify=None))
    assert set(parts["test"].participants) <= set(["100", "103", "105", "113", "200", "210", "213", "221", "222", "228", "232", "233"])
    assert len(parts["val"].participants) == 3 and not set(parts["val"].participants) & set(parts["train"].participants)
    tr, va, te = participant_split(50, (0.6, 0.2, 0.2), 1)
    assert sorted(tr + va + te) == list(range(50))


def test_pairs_are_different_segments_of_the_same_participant():
    s = load_ppg_bp("ppg_bp")
    ds = ParticipantPairs(s)
    torch.manual_seed(0)
    for i in range(0, 657, 37):
        item = ds[i]
        j = [k for k in range(len(s)) if torch.equal(s.x[k], item["b"])]
        assert j and j[0] != i and int(s.pid[j[0]]) == int(item["pid"]) == int(s.pid[i])


def test_table_and_array_loaders(tmp_path):
    t = np.arange(1000)
    frame = pd.DataFrame({"who": np.repeat(["a", "b"], 500), "time": np.tile(t[:500], 2),
                          "ppg": np.sin(t / 5.0), "age": np.repeat([30.0, 60.0], 500)})
    frame.to_csv(tmp_path / "sig.csv", index=False)
    s = load_table_signals(str(tmp_path / "sig.csv"), "who", ["ppg"], 100.0, 50.0, 2.0, "time", ("age",))
    assert s.x.shape == (4, 1, 100) and s.participants == ["a", "b"] and s.targets["age"].tolist() == [30.0, 60.0]
    np.savez(tmp_path / "arr.npz", x=np.random.randn(6, 2, 300).astype(np.float32),
             participant=np.array(["p", "p", "q", "q", "r", "r"]), target_age=np.array([1, 1, 2, 2, 3, 3.0]))
    a = load_array_signals(str(tmp_path / "arr.npz"), 100.0, 100.0, 2.0)
    assert a.x.shape == (6, 2, 200) and a.targets["age"].tolist() == [1.0, 2.0, 3.0]
