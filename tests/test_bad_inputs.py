"""Every bad input, folder or checkpoint a hostile new user tried (issue 18) is ONE line, exit 2.

Each row builds its bad input in a temporary folder, runs the command in-process through the CLI's
own error handling (``multissl.cli.main``, or ``multissl.cli.guarded`` for a loader with no quick
command), and asserts: the exit code, exactly one ``multissl: error:`` line holding the expected
words and no traceback, and that no run folder is left half-written (a new run folder is gone; an
existing one has exactly the files it had, and no ``.tmp-`` leftovers anywhere).
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from multissl.cli import guarded, main

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
TINY = ["tabular/scarf-digits", "train.max_steps=2", "method.hidden=16", "method.encoder_layers=1",
        "train.progress=false", "train.log_every=1"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """One tiny finished run (2 steps of SCARF on the shipped digits), copied by rows that need one."""
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["train", *TINY, "--run-dir", str(run)]) == 0
    return run


def _copy(run: Path, tmp: Path) -> Path:
    dst = tmp / "run"
    shutil.copytree(run, dst)
    return dst


def _digits_csv(tmp: Path, edit: Callable[[list[list[str]]], None], rows: int = 160) -> Path:
    with gzip.open(DATA / "digits" / "digits.csv.gz", "rt") as fh:
        lines = [ln.split(",") for ln in fh.read().splitlines()[:rows]]
    edit(lines)
    path = tmp / "table.csv"
    path.write_text("\n".join(",".join(r) for r in lines) + "\n")
    return path


def _set(row: int, col: int, value: str) -> Callable[[list[list[str]]], None]:
    def edit(lines: list[list[str]]) -> None:
        lines[row][col] = value
    return edit


# -- rows: each returns (callable giving the exit code, run folder to check or None) --------------

def planetoid_code_exec(tmp: Path, finished: Path):
    evil = tmp / "planetoid"
    shutil.copytree(DATA / "planetoid", evil)
    marker = tmp / "PWNED"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (evil / "ind.cora.x").write_bytes(pickle.dumps(Payload(), protocol=2))
    run = tmp / "out"

    def go() -> int:
        rc = main(["train", "graph/graphmae-cora", f"data.path={evil}", "train.progress=false", "--run-dir", str(run)])
        assert not marker.exists(), "the pickle ran its command"
        return rc
    return go, run


def planetoid_truncated(tmp: Path, finished: Path):
    bad = tmp / "planetoid"
    shutil.copytree(DATA / "planetoid", bad)
    (bad / "ind.cora.y").write_bytes((bad / "ind.cora.y").read_bytes()[:100])
    run = tmp / "out"
    return lambda: main(["train", "graph/graphmae-cora", f"data.path={bad}", "--run-dir", str(run)]), run


def csv_not_a_number(tmp: Path, finished: Path):
    path = _digits_csv(tmp, _set(2, 5, "abc"))
    run = tmp / "out"
    return lambda: main(["train", *TINY, f"data.path={path}", "--run-dir", str(run)]), run


def csv_nan_cell_train(tmp: Path, finished: Path):
    path = _digits_csv(tmp, _set(7, 3, ""))
    run = tmp / "out"
    return lambda: main(["train", *TINY, f"data.path={path}", "--run-dir", str(run)]), run


def csv_nan_cell_embed(tmp: Path, finished: Path):
    path = _digits_csv(tmp, _set(3, 0, "nan"), rows=20)
    out = tmp / "emb.npy"

    def go() -> int:
        rc = main(["embed", "--run", str(finished), "--data", str(path), "--out", str(out)])
        assert not out.exists()
        return rc
    return go, None


def csv_inf_cell(tmp: Path, finished: Path):
    path = _digits_csv(tmp, _set(1, 1, "inf"))
    run = tmp / "out"
    return lambda: main(["train", *TINY, f"data.path={path}", "--run-dir", str(run)]), run


def series_not_a_number(tmp: Path, finished: Path):
    lines = (DATA / "ett" / "ETTh1.csv").read_text().splitlines()[:3000]
    lines[11] = lines[11].rsplit(",", 1)[0] + ",abc"
    path = tmp / "series.csv"
    path.write_text("\n".join(lines) + "\n")
    run = tmp / "out"
    return lambda: main(["train", "timeseries/dlinear-etth1", f"data.path={path}", "data.protocol=ratio",
                         "--run-dir", str(run)]), run


def series_nan_cell(tmp: Path, finished: Path):
    lines = (DATA / "ett" / "ETTh1.csv").read_text().splitlines()[:3000]
    lines[20] = lines[20].rsplit(",", 1)[0] + ","
    path = tmp / "series.csv"
    path.write_text("\n".join(lines) + "\n")
    run = tmp / "out"
    return lambda: main(["train", "timeseries/dlinear-etth1", f"data.path={path}", "data.protocol=ratio",
                         "--run-dir", str(run)]), run


def text_not_utf8(tmp: Path, finished: Path):
    path = tmp / "corpus.txt"
    path.write_bytes(b"a fine sentence\nanother one\ncaf\xe9 in latin-1\n")

    def go() -> int:
        from multissl.text.data import load_sentences

        return guarded(lambda: load_sentences(str(path)) and 0)
    return go, None


def sts_not_utf8(tmp: Path, finished: Path):
    path = tmp / "sts-test.csv"
    path.write_bytes(b"main\tcaptions\t2012\t0001\t5.0\tA man\xff plays.\tA man plays.\n")
    return lambda: main(["eval", "sts", "--model", "minilm", "--data", str(path)]), None


def sts_empty_file(tmp: Path, finished: Path):
    path = tmp / "sts-test.csv"
    path.write_text("")
    return lambda: main(["eval", "sts", "--model", "minilm", "--data", str(path)]), None


def sts_folder_without_sts(tmp: Path, finished: Path):
    (tmp / "folder").mkdir()
    return lambda: main(["eval", "sts", "--model", "minilm", "--data", str(tmp / "folder")]), None


def image_folder_with_non_image(tmp: Path, finished: Path):
    from PIL import Image

    root = tmp / "images"
    (root / "train" / "cat").mkdir(parents=True)
    Image.new("RGB", (32, 32), (200, 10, 10)).save(root / "train" / "cat" / "a.png")
    (root / "train" / "cat" / "notes.png").write_text("not an image")

    def go() -> int:
        from multissl.image.data import load_image_folder

        return guarded(lambda: load_image_folder(str(root), "train") and 0)
    return go, None


def empty_wav(tmp: Path, finished: Path):
    path = tmp / "0_george_0.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)

    def go() -> int:
        from multissl.speech.audio import load_audio

        return guarded(lambda: load_audio(path) and 0)
    return go, None


def lidar_bin_bad_size(tmp: Path, finished: Path):
    path = tmp / "000000.bin"
    path.write_bytes(np.ones((10, 4), np.float32).tobytes() + b"\x00" * 8)

    def go() -> int:
        from multissl.pointcloud.io import read_points

        return guarded(lambda: read_points(path) and 0)
    return go, None


def lr_overflow(tmp: Path, finished: Path):
    run = tmp / "out"
    return lambda: main(["train", *TINY, "train.lr=1e39", "--run-dir", str(run)]), run


def lr_nan(tmp: Path, finished: Path):
    run = tmp / "out"
    return lambda: main(["train", *TINY, "train.lr=.nan", "--run-dir", str(run)]), run


def unknown_key(tmp: Path, finished: Path):
    run = tmp / "out"
    return lambda: main(["train", *TINY, "train.lrr=0.1", "--run-dir", str(run)]), run


def override_without_value(tmp: Path, finished: Path):
    run = tmp / "out"
    return lambda: main(["train", *TINY, "train.lr", "--run-dir", str(run)]), run


def recipe_not_yaml(tmp: Path, finished: Path):
    path = tmp / "bad.yaml"
    path.write_text("name: [unclosed\n")
    return lambda: main(["train", str(path), "--run-dir", str(tmp / "out")]), tmp / "out"


def unknown_eval(tmp: Path, finished: Path):
    return lambda: main(["eval", "stss"]), None


def resume_width_changed(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    return lambda: main(["train", *TINY, "method.hidden=32", "--resume", str(run)]), run


def resume_batch_changed(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    return lambda: main(["train", *TINY, "train.batch_size=64", "--resume", str(run)]), run


def resume_checkpoint_other_width(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    (run / "recipe.yaml").unlink()  # no recipe to compare: the weights themselves must say what differs
    return lambda: main(["train", *TINY, "method.hidden=32", "--resume", str(run)]), run


def state_bad_value(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    f = run / "checkpoints" / "last" / "trainer_state.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), "step": "abc"}))
    return lambda: main(["train", *TINY, "--resume", str(run)]), run


def state_not_json(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    (run / "checkpoints" / "last" / "trainer_state.json").write_text("{step: 2")
    return lambda: main(["train", *TINY, "--resume", str(run)]), run


def weights_garbage(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    f = run / "checkpoints" / "last" / "model.safetensors"
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2: len(raw) // 2 + 4096] = os.urandom(4096)
    f.write_bytes(bytes(raw))
    return lambda: main(["train", *TINY, "--resume", str(run)]), run


def optimizer_garbage(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    f = run / "checkpoints" / "last" / "optimizer.pt"
    raw = bytearray(f.read_bytes())
    raw[-600:-100] = bytes(500)
    f.write_bytes(bytes(raw))
    return lambda: main(["train", *TINY, "--resume", str(run)]), run


def embed_garbage_weights(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    choice = "best" if (run / "checkpoints" / "best").exists() else "last"
    f = run / "checkpoints" / choice / "model.safetensors"
    raw = bytearray(f.read_bytes())
    raw[-4096:] = bytes(4096)
    f.write_bytes(bytes(raw))
    out = tmp / "emb.npy"

    def go() -> int:
        rc = main(["embed", "--run", str(run), "--data", "digits/digits.csv.gz", "--out", str(out)])
        assert not out.exists()
        return rc
    return go, run


def embed_not_a_run(tmp: Path, finished: Path):
    return lambda: main(["embed", "--run", str(tmp), "--data", "digits/digits.csv.gz", "--out",
                         str(tmp / "e.npy")]), None


def embed_missing_data(tmp: Path, finished: Path):
    out = tmp / "e.npy"
    return lambda: main(["embed", "--run", str(finished), "--data", str(tmp / "nope.csv"), "--out", str(out)]), None


def retrieval_split_absent(tmp: Path, finished: Path):
    src = DATA / "flickr8k-mini"
    rows = [json.loads(ln) for ln in (src / "captions.jsonl").read_text().splitlines()[:10]]
    for r in rows:
        r["split"], r["image"] = "train", str(src / r["image"])
    path = tmp / "captions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return lambda: main(["eval", "retrieval", "--data", str(path), "--split", "test"]), None


def embed_bad_suffix(tmp: Path, finished: Path):
    return lambda: main(["embed", "--run", str(finished), "--data", "digits/digits.csv.gz", "--out",
                         str(tmp / "e.txt")]), None


def embed_out_under_file(tmp: Path, finished: Path):
    (tmp / "afile").write_text("x")
    return lambda: main(["embed", "--run", str(finished), "--data", "digits/digits.csv.gz", "--out",
                         str(tmp / "afile" / "e.npy")]), None


def output_dir_is_file(tmp: Path, finished: Path):
    (tmp / "afile").write_text("x")
    return lambda: main(["train", *TINY, "--output-dir", str(tmp / "afile")]), None


def run_dir_is_file(tmp: Path, finished: Path):
    (tmp / "afile").write_text("x")
    return lambda: main(["train", *TINY, "--run-dir", str(tmp / "afile")]), None


def run_dir_under_file(tmp: Path, finished: Path):
    (tmp / "afile").write_text("x")
    return lambda: main(["train", *TINY, "--run-dir", str(tmp / "afile" / "run")]), None


def existing_empty_run_dir_bad_data(tmp: Path, finished: Path):
    path = _digits_csv(tmp, _set(2, 5, "abc"))
    run = tmp / "mine"
    run.mkdir()
    return lambda: main(["train", *TINY, f"data.path={path}", "--run-dir", str(run)]), run


def checkpoints_is_file(tmp: Path, finished: Path):
    run = tmp / "run"
    run.mkdir()
    (run / "checkpoints").write_text("x")
    return lambda: main(["train", *TINY, "--run-dir", str(run)]), run


def read_only_run_dir(tmp: Path, finished: Path):
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    run = tmp / "run"
    run.mkdir()
    run.chmod(0o555)
    return lambda: main(["train", *TINY, "--run-dir", str(run)]), run


def run_dir_on_read_only_fs(tmp: Path, finished: Path):
    if not Path("/proc/self").exists():
        pytest.skip("needs Linux /proc")
    return lambda: main(["train", *TINY, "--run-dir", "/proc/multissl-run"]), None


def finished_run_no_overwrite(tmp: Path, finished: Path):
    run = _copy(finished, tmp)
    return lambda: main(["train", *TINY, "--run-dir", str(run)]), run


def resume_missing(tmp: Path, finished: Path):
    return lambda: main(["train", *TINY, "--resume", str(tmp / "nope")]), None


def resume_a_file(tmp: Path, finished: Path):
    (tmp / "afile").write_text("x")
    return lambda: main(["train", *TINY, "--resume", str(tmp / "afile")]), None


ROWS = [
    # (case, expected exit code, words the one error line must hold)
    (planetoid_code_exec, 2, ["ind.cora.x", "refused"]),
    (planetoid_truncated, 2, ["ind.cora"]),
    (csv_not_a_number, 2, ["table.csv", "row 3", "column 6", "'abc'"]),
    (csv_nan_cell_train, 2, ["table.csv", "row 8", "column 4", "NaN"]),
    (csv_nan_cell_embed, 2, ["table.csv", "row 4", "column 1", "NaN"]),
    (csv_inf_cell, 2, ["row 2", "column 2", "infinite"]),
    (series_not_a_number, 2, ["series.csv", "line 12", "'OT'", "'abc'"]),
    (series_nan_cell, 2, ["series.csv", "line 21", "'OT'", "empty or NaN"]),
    (text_not_utf8, 2, ["corpus.txt", "not UTF-8", "byte offset 31"]),
    (sts_not_utf8, 2, ["sts-test.csv", "not UTF-8", "byte offset"]),
    (sts_empty_file, 2, ["sts-test.csv", "no scored sentence pairs"]),
    (sts_folder_without_sts, 2, ["no STS files"]),
    (image_folder_with_non_image, 2, ["notes.png", "not a readable image"]),
    (empty_wav, 2, ["0_george_0.wav", "no samples"]),
    (lidar_bin_bad_size, 2, ["000000.bin", "168 bytes", "16-byte"]),
    (lr_overflow, 2, ["lr", "1e+39"]),
    (lr_nan, 2, ["lr", "nan"]),
    (unknown_key, 2, ["lrr", "Did you mean 'train.lr'"]),
    (override_without_value, 2, ["key.sub=value"]),
    (recipe_not_yaml, 2, ["bad.yaml", "not valid YAML"]),
    (unknown_eval, 2, ["Unknown evaluation 'stss'", "sts"]),
    (resume_width_changed, 2, ["method.hidden", "16", "32", "recipe.yaml --resume", "start a new run"]),
    (resume_batch_changed, 2, ["train.batch_size", "128", "64"]),
    (resume_checkpoint_other_width, 2, ["(16,", "(32,", "in the checkpoint", "in the recipe"]),
    (state_bad_value, 2, ["trainer_state.json", "'step'", "'abc'"]),
    (state_not_json, 2, ["trainer_state.json", "corrupt"]),
    (weights_garbage, 2, ["model.safetensors", "corrupt", "SHA-256"]),
    (optimizer_garbage, 2, ["optimizer.pt", "corrupt", "SHA-256"]),
    (embed_garbage_weights, 2, ["model.safetensors", "SHA-256"]),
    (embed_not_a_run, 2, ["not a run folder"]),
    (embed_bad_suffix, 2, [".npy or .parquet"]),
    (embed_missing_data, 2, ["nope.csv", "not found"]),
    (embed_out_under_file, 2, ["afile", "is a file"]),
    (retrieval_split_absent, 2, ["no images in split 'test'", "train"]),
    (output_dir_is_file, 2, ["afile", "not writable"]),
    (run_dir_is_file, 2, ["afile", "is a file"]),
    (run_dir_under_file, 2, ["afile", "not writable"]),
    (checkpoints_is_file, 2, ["checkpoints", "is a file"]),
    (existing_empty_run_dir_bad_data, 2, ["table.csv", "row 3"]),
    (read_only_run_dir, 2, ["not writable"]),
    (run_dir_on_read_only_fs, 2, ["/proc/multissl-run", "not writable"]),
    (finished_run_no_overwrite, 2, ["already holds a run", "--overwrite", "--resume"]),
    (resume_missing, 2, ["no such folder"]),
    (resume_a_file, 2, ["is a file"]),
]


def _listing(folder: Path | None) -> list[str] | None:
    if folder is None or not folder.exists():
        return None
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("case,code,words", ROWS, ids=[r[0].__name__ for r in ROWS])
def test_bad_input_is_one_line(case, code, words, tmp_path, finished, capsys):
    go, run = case(tmp_path, finished)
    before = _listing(run)
    capsys.readouterr()
    assert go() == code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("multissl: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], (w, lines[0])
    if run is not None:  # nothing half-written: a new folder is gone, an existing one is untouched
        assert _listing(run) == before, (before, _listing(run))
    assert not [p for p in tmp_path.rglob("*") if ".tmp-" in p.name]


def test_rows_cover_the_issue():
    assert len(ROWS) >= 30


def test_overwrite_replaces_a_finished_run(tmp_path, finished):
    run = _copy(finished, tmp_path)
    (run / "metrics.jsonl").write_text('{"step": 99, "loss": 1.0}\n')
    assert main(["train", *TINY, "--run-dir", str(run), "--overwrite"]) == 0
    steps = [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert 99 not in steps and json.loads((run / "results.json").read_text())["steps"] == 2


def test_checkpoint_files_are_hashed_and_readable_by_all(finished):
    from multissl.train.checkpoint import sha256

    last = finished / "checkpoints" / "last"
    recorded = json.loads((last / "trainer_state.json").read_text())["sha256"]
    assert set(recorded) >= {"model.safetensors", "optimizer.pt", "rng.pt"}
    for name, digest in recorded.items():
        assert sha256(last / name) == digest
    modes = {p.name: p.stat().st_mode & 0o777 for p in last.iterdir()}
    assert len(set(modes.values())) == 1, modes  # model.safetensors no longer 0600 among 0644 files


def test_nan_in_a_training_batch_is_a_data_error_not_lr_advice(tmp_path):
    import torch

    from multissl.errors import DataError
    from multissl.train.guards import divergence_error

    batch = {"x": torch.tensor([[1.0, float("nan")]]), "ids": torch.tensor([3])}
    err = divergence_error(torch.tensor(float("nan")), batch, 5, 0, tmp_path, None, 1e-3, "r.yaml")
    assert isinstance(err, DataError) and "batch['x']" in str(err) and "lower learning rate will not" in str(err)


def test_eval_and_bench_listings_do_not_import_torch():
    """`multissl eval --help` / `bench --help` list names from the catalogs alone (issue: 9-14 s before)."""
    import subprocess
    import sys

    code = ("import sys; from multissl.cli import main; main(['eval', '--help']); main(['bench', '--help']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:] + out.stderr[-500:]
    assert "sts" in out.stdout and "overhead" in out.stdout
