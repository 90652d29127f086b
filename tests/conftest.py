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


UNTRAINED = os.environ.get("MULTISSL_TEST_UNTRAINED") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "learning: asserts that training beats the untrained model in the same configuration; "
        "`MULTISSL_TEST_UNTRAINED=1 pytest -m learning` (the trainer's learning rate forced to 0) must turn "
        "every one of them red (docs/notes/testing.md)")


@pytest.fixture(autouse=True)
def _untrained_mode(monkeypatch):
    """With MULTISSL_TEST_UNTRAINED=1, every optimizer the one training loop builds has learning rate 0:
    weights never move, while data, augmentations, EMA hooks, queues, evaluation and probes all still run.
    This is the check that no learning test passes on an untrained model (docs/notes/testing.md)."""
    if UNTRAINED:
        from multissl.train import trainer

        build = trainer.build_optimizer  # fails loudly if the trainer stops building its optimizer here

        def frozen(method, cfg):
            opt = build(method, cfg)
            for group in opt.param_groups:
                group["lr"] = 0.0
            return opt

        monkeypatch.setattr(trainer, "build_optimizer", frozen)
    yield


@pytest.fixture
def lr_scale() -> float:
    """1.0, or 0.0 under MULTISSL_TEST_UNTRAINED=1: tests with their own optimisation loop multiply their
    learning rate by it, so the untrained check covers them too."""
    return 0.0 if UNTRAINED else 1.0


# Learning tests in folders whose files other work owns: marked here so `-m learning` selects them too
# (tests in tests/image, tests/tabular, tests/speech, tests/vl carry the decorator themselves).
LEARNING = {
    "tests/biosignal/test_pretrain_e2e.py": ["test_participant_contrastive_objective_is_learned"],
    "tests/code/test_code_train.py": ["test_cocosoda_trains_and_beats_untrained_encoder",
                                      "test_finetune_trains_and_beats_untrained_encoder"],
    "tests/graph/test_graph_train.py": ["test_graphmae_cora_beats_random_init",
                                        "test_xsimgcl_gowalla_slice_beats_baselines"],
    "tests/pointcloud/test_pointmae.py": ["test_pointmae_pretraining_beats_random_init_probe"],
    "tests/pointcloud/test_real_objects.py": ["test_pointmae_learns_on_real_modelnet10_clouds"],
    "tests/text/test_methods.py": ["test_contrastive_loss_falls_on_real_sentences", "test_mlm_loss_falls"],
    "tests/timeseries/test_forecast_e2e.py": ["test_dlinear_beats_last_value",
                                              "test_end_to_end_contrastive_transformer_beats_last_value"],
    "tests/train/test_trainer.py": ["test_training_converges_and_writes_outputs", "test_bf16_autocast_runs_on_cpu"],
}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    """Add the ``learning`` marker to the tests named in LEARNING; a listed name that a collected file no
    longer has is an error, so a rename cannot silently drop a test from the untrained check."""
    root = config.rootpath
    seen: dict[str, set[str]] = {}
    for item in items:
        rel = item.path.relative_to(root).as_posix() if item.path.is_relative_to(root) else str(item.path)
        name = item.originalname or item.name
        seen.setdefault(rel, set()).add(name)
        if name in LEARNING.get(rel, ()):
            item.add_marker(pytest.mark.learning)
    for rel, names in LEARNING.items():
        missing = set(names) - seen.get(rel, set()) if rel in seen else set()
        if missing:
            raise pytest.UsageError(f"tests/conftest.py LEARNING lists {sorted(missing)} in {rel}, which has no "
                                    "such test any more: update the list")
