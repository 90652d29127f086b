"""Every table layout reads the same rows; headerless STS-B; labelled files from folders and archives."""

import io
import tarfile

import pandas as pd
import pytest

from multissl.errors import DataError
from multissl.finetune.data import (
    load_labelled_files,
    load_labelled_text,
    load_pairs,
    load_scored_pairs,
    split_by_name,
    split_fraction,
)

ROWS = {"query": ["a cat sits", "dogs bark", "rain falls"], "pos": ["a cat is sitting", "dogs are barking", "it rains"],
        "neg1": ["a dog sits", "cats meow", "sun shines"], "neg2": ["x", "y", "z"], "gid": ["1", "2", "1"]}


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet", ".csv.gz"])
def test_pairs_every_layout(tmp_path, suffix):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"pairs{suffix}"
    if suffix.startswith(".csv"):
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.to_parquet(path, index=False)
    rows = load_pairs(str(path), "query", "pos", ["neg1", "neg2"], id_column="gid")
    assert rows.anchors == ROWS["query"] and rows.positives == ROWS["pos"]
    assert rows.negatives == [["a dog sits", "x"], ["cats meow", "y"], ["sun shines", "z"]]
    assert rows.groups[0] == rows.groups[2] != rows.groups[1]
    with pytest.raises(DataError, match="no column 'positive'"):
        load_pairs(str(path), "query", "positive")


def test_headerless_stsb_keeps_every_pair():
    """The STS-B release has no header, TABs inside no quotes, and extra trailing fields on some lines."""
    dev = load_scored_pairs("stsb/sts-dev.csv.gz", "5", "6", "4", header=False)
    assert len(dev.s1) == 1500 and float(dev.scores.max()) == 5.0
    para = load_pairs("stsb/sts-train.csv.gz", "5", "6", header=False, score_column="4", min_score=4.0)
    assert 1000 < len(para) < 2000
    genres = load_labelled_text("stsb/sts-train.csv.gz", "5", "1", header=False)
    assert len(genres) == 5749 and "headlines" in genres.classes


def _wav(seconds: float, rate: int = 8000) -> bytes:
    import numpy as np
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, np.zeros(int(seconds * rate), dtype="float32"), rate, format="WAV")
    return buf.getvalue()


def test_labelled_audio_folder_and_archive(tmp_path):
    names = ["3_anna_0.wav", "3_anna_1.wav", "7_bob_0.wav", "7_bob_5.wav"]
    folder = tmp_path / "clips"
    folder.mkdir()
    with tarfile.open(tmp_path / "clips.tar.gz", "w:gz") as tar:
        for n in names:
            (folder / n).write_bytes(_wav(0.5))
            tar.add(folder / n, arcname=f"rec/{n}")
    for source in (folder, tmp_path / "clips.tar.gz"):
        data = load_labelled_files(str(source), "audio", label_regex=r"^(\d)_", sampling_rate=16000)
        assert data.classes == ["3", "7"] and data.labels.tolist() == [0, 0, 1, 1]
        assert data.items[0].shape == (8000,)  # resampled 8 kHz -> 16 kHz
        rest, held = split_by_name(data, r"_0\.wav$")
        assert len(rest) == 2 and len(held) == 2
    with pytest.raises(DataError, match="class folder"):
        load_labelled_files(str(folder), "audio")


def test_labelled_images_from_class_folders():
    data = load_labelled_files("cifar10-mini/test.tar.gz", "image", limit=30)
    assert data.items[0].shape == (3, 32, 32) and len(data.classes) >= 8  # a seeded sample across classes
    rest, held = split_fraction(data, 0.2, seed=0)
    assert len(held) == 6 and not set(rest.names) & set(held.names)


def test_clear_errors_for_bad_sources_and_recipes():
    from multissl.errors import RecipeError
    from multissl.finetune.data import read_table
    from multissl.recipes import load_recipe

    with pytest.raises(DataError, match="Cannot load datasets"):
        read_table("hf:no-such-user/no-such-set:train")
    with pytest.raises(DataError, match="unknown table format"):
        read_table("stsb/SOURCES.md")
    with pytest.raises(RecipeError, match="model.modality must be 'text'"):
        load_recipe("finetune/pairs-stsb-minilm", ["model.modality=image"])
    with pytest.raises(RecipeError, match="views must be >= 2"):
        load_recipe("finetune/supcon-fsdd-wav2vec2", ["method.views=1"])
    recipe = load_recipe("finetune/sup-simcse-nli")  # the paper's setting parses as shipped
    assert recipe.train.batch_size == 512 and recipe.config.method.temperature == 0.05
