"""Shared test set-up: offline hub, deterministic threads, a temporary runs folder."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MULTISSL_BENCH_DIR", os.path.join(os.environ.get("TMPDIR", "/tmp"), "multissl-bench-tests"))

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture
def one_torch_thread():
    """Run a test on one intra-op thread, restoring the count after. Tiny models gain nothing from more,
    and on a shared, loaded CPU extra threads only oversubscribe (the PPG-BP end-to-end test took
    1,458 s wall with 2 threads under load, ~2.5 min with one). Folders opt in from their conftest."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
