"""Build the shipped MIT-BIH subset ``data/mitdb-mini/mitdb_mini.npz`` from the staged full data.

    python -m multissl.biosignal.make_subset $MULTISSL_DATA/biosignal/mitdb/mitdb_npz.tar.xz \
        data/mitdb-mini/mitdb_mini.npz --minutes 5 --fs 128

MLII lead resampled to ``fs``, first ``minutes`` of each record, stored as int16 first differences at
200 units per mV (the database's ADC gain), beat annotations mapped to the new rate.
"""

from __future__ import annotations

import argparse

import numpy as np

from multissl.biosignal.data import read_mitdb_records

RECORDS = ("101 106 109 118 119 124 203 208 215 220 223 230 "  # from DS1
           "100 103 105 113 200 210 213 221 222 228 232 233").split()  # from DS2


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("source")
    ap.add_argument("out")
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--fs", type=float, default=128.0)
    ap.add_argument("--records", nargs="*", default=RECORDS)
    a = ap.parse_args(argv)
    recs = read_mitdb_records(a.source, a.records, a.fs, a.minutes)
    gain = 200.0
    n = max(len(recs[r]["ecg"]) for r in a.records)
    delta = np.zeros((len(a.records), n), np.int16)
    lengths, ann_rec, ann_s, ann_y = [], [], [], []
    for i, r in enumerate(a.records):
        q = np.round(recs[r]["ecg"] * gain).astype(np.int64)
        delta[i, : len(q)] = np.diff(q, prepend=0)
        lengths.append(len(q))
        keep = recs[r]["ann_sample"] < len(q)
        ann_s.append(recs[r]["ann_sample"][keep])
        ann_y.append(recs[r]["ann_symbol"][keep])
        ann_rec.append(np.full(int(keep.sum()), i))
    np.savez_compressed(
        a.out, records=np.array(a.records), fs=np.float64(a.fs), gain=np.float64(gain), ecg_delta=delta,
        lengths=np.array(lengths), ann_record=np.concatenate(ann_rec), ann_sample=np.concatenate(ann_s),
        ann_symbol=np.concatenate(ann_y).astype("U2"),
        age=np.array([recs[r]["age"] for r in a.records]), sex=np.array([recs[r]["sex"] for r in a.records]))
    print(f"wrote {a.out}: {len(a.records)} records x {a.minutes} min at {a.fs} Hz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
