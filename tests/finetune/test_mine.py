"""Hard-negative mining rules (sentence-transformers' mine_hard_negatives semantics) and its command line."""

import pandas as pd
import pytest
import torch

from multissl.errors import DataError
from multissl.finetune.data import PairRows, load_pairs
from multissl.finetune.mine import mine_hard_negatives, write_rows

# a fixed 2-D embedding per text: cosine similarity to the anchor 'q' is set by the angle
ANGLES = {"q": 0.0, "pos": 5.0, "dup": 6.0, "near": 20.0, "mid": 40.0, "far": 80.0, "q2": 90.0, "pos2": 95.0}


def embed(texts):
    a = torch.tensor([ANGLES[t] for t in texts]) * torch.pi / 180
    return torch.stack([a.cos(), a.sin()], 1)


def rows():
    return PairRows(["q", "q2"], ["pos", "pos2"])


def corpus():
    return ["dup", "near", "mid", "far"]


def test_top_k_skips_the_positive_and_the_anchor():
    out, stats = mine_hard_negatives(rows(), embed, corpus=corpus(), num_negatives=2)
    assert out.negatives[0] == ["dup", "near"]  # 'pos' (its positive) never a negative
    assert "q2" not in out.negatives[1] and "pos2" not in out.negatives[1]
    assert stats.rows_out == 2 and stats.mean_positive_score > stats.mean_negative_score


def test_margin_range_and_max_score_skip_near_duplicates():
    out, _ = mine_hard_negatives(rows(), embed, corpus=corpus(), num_negatives=1, margin=0.05)
    assert out.negatives[0] == ["near"]  # cos(dup) = 0.995 > cos(pos) - 0.05
    out, _ = mine_hard_negatives(rows(), embed, corpus=corpus(), num_negatives=1, range_min=2)
    assert out.negatives[0] == ["mid"]
    out, _ = mine_hard_negatives(rows(), embed, corpus=corpus(), num_negatives=1, max_score=0.9)
    assert out.negatives[0] == ["mid"]  # cos(near) = 0.94
    out, _ = mine_hard_negatives(rows(), embed, corpus=corpus(), num_negatives=1, relative_margin=0.5)
    assert out.negatives[0] == ["far"]
    with pytest.raises(DataError, match="kept no row"):
        mine_hard_negatives(rows(), embed, corpus=corpus(), num_negatives=9)


def test_cli_writes_triplets_that_load_back(tiny_text, tmp_path, capsys):
    src = tmp_path / "pairs.csv"
    pd.DataFrame({"q": ["a cat sits on a mat", "dogs bark at night", "rain falls in spring", "a man plays piano"],
                  "d": ["a cat is sitting", "the dogs are barking", "it rains in spring", "someone plays piano"]}
                 ).to_csv(src, index=False)
    out = tmp_path / "triplets.jsonl"
    from multissl.cli import main as cli

    assert cli(["mine-negatives", "--data", str(src), "--anchor-column", "q", "--positive-column", "d",
                "--model", tiny_text, "--num-negatives", "2", "--out", str(out)]) == 0
    back = load_pairs(str(out), negatives=["negative_1", "negative_2"])
    assert len(back) == 4 and all(r[1] not in n for r, n in zip(zip(back.anchors, back.positives), back.negatives))
    write_rows(back, tmp_path / "again.parquet")
    assert load_pairs(str(tmp_path / "again.parquet"), negatives=["negative_1", "negative_2"]).negatives == back.negatives
