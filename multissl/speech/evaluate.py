"""``multissl eval speech``: frozen-feature keyword / speaker probes of log-mel, random-init or TERA runs.

    multissl eval speech --data $MULTISSL_DATA/speech/fsdd/fsdd_recordings.tar.gz --task keyword \
        --upstream logmel random runs/tera-cpu-fsdd/seed0 runs/tera-cpu-fsdd/seed1 --layer last weighted

``--data`` takes any layout of :mod:`multissl.speech.data`. ``keyword``: utterance label, speaker-disjoint
(FSDD: train george / jackson / lucas / nicolas, test theo / yweweler); ``speaker``: speaker ID on held-out
utterances (FSDD: takes 0-4). ``random`` is an untrained encoder shaped like ``--recipe`` (one per
``--seeds``); a run folder is a ``speech.tera`` run (its recipe and best-else-last checkpoint).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch


def _stats(values: list[float]) -> tuple[float, float]:
    m = sum(values) / len(values)
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return m, sd


def load_run(run: Path):
    """(recipe, method with the run's selected weights) of a speech.tera run folder."""
    from safetensors.torch import load_file, save_file

    from multissl.errors import CheckpointError
    from multissl.recipes import load_recipe
    from multissl.speech.tasks import build_method
    from multissl.train.checkpoint import load_weights, verify_file

    recipe = load_recipe(str(run / "recipe.yaml"))
    method = build_method(recipe.config)
    for kind in ("best", "last"):
        weights = run / "checkpoints" / kind / "model.safetensors"
        if weights.exists():
            verify_file(weights)  # the SHA-256 recorded in trainer_state.json
            tensors = load_file(str(weights))
            if "input_mean" not in tensors:  # runs written before the global-CMVN buffers existed
                tensors.update({k: method.state_dict()[k] for k in ("input_mean", "input_std")})
                weights = run / "checkpoints" / kind / "model.upgraded.safetensors"
                save_file(tensors, str(weights))
            load_weights(method, weights)
            return recipe, method.eval()
    raise CheckpointError(f"{run}: no checkpoints/best or checkpoints/last")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl eval speech", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="labelled speech set (FSDD tar/folder, Speech Commands, "
                   "LibriSpeech, manifest .csv/.jsonl, datasets folder/.parquet)")
    p.add_argument("--task", nargs="+", choices=("keyword", "speaker"), default=["keyword", "speaker"])
    p.add_argument("--upstream", nargs="+", default=["logmel", "random"],
                   help="'logmel', 'random' and/or speech.tera run folders")
    p.add_argument("--recipe", default="speech/tera-cpu-fsdd", help="front end and random-encoder shape")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides of --recipe (e.g. data.cmvn=none data.sample_rate=16000)")
    p.add_argument("--labels", choices=("words", "superb12"), default=None,
                   help="keyword label set (default: the recipe's data.labels); superb12: SUPERB's 12 classes")
    p.add_argument("--segment-seconds", type=float, default=None,
                   help="cut long recordings into segments, split by recording (default: the recipe's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="random-init seeds / probe seeds")
    p.add_argument("--layer", nargs="+", default=["last"], help="'last', 'weighted' or a hidden-state index")
    p.add_argument("--test-speakers", nargs="+", default=["theo", "yweweler"])
    p.add_argument("--val-speakers", nargs="+", default=["nicolas"])
    p.add_argument("--min-clips", type=int, default=3, help="speaker probe: leave out speakers with fewer clips")
    p.add_argument("--pooling", choices=("mean", "meanstd"), default="meanstd")
    p.add_argument("--json", help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    with torch.no_grad():  # never left switched off for the caller (e.g. a test run in the same process)
        return _run(args)


def _run(args) -> int:
    from multissl.recipes import load_recipe
    from multissl.speech.data import compute_log_mels, load_utterances, segment_utterances
    from multissl.speech.probes import keyword_split, probe, speaker_split, utterance_features
    from multissl.speech.tasks import build_method, fbank_config, with_val_in_train


    base = load_recipe(args.recipe, args.set)
    labels = args.labels or base.config.data.labels
    seconds = base.config.data.segment_seconds if args.segment_seconds is None else args.segment_seconds
    utts = load_utterances(args.data, labels)
    if seconds > 0:
        utts = segment_utterances(utts, seconds)
    t = time.perf_counter()
    feats_by_frontend: dict[str, list[torch.Tensor]] = {}

    def features_for(cfg) -> list[torch.Tensor]:
        fb = fbank_config(cfg.data)
        key = repr((fb, cfg.data.target_db))
        if key not in feats_by_frontend:
            feats_by_frontend[key] = compute_log_mels(utts, fb, cfg.data.target_db)
        return feats_by_frontend[key]

    features_for(base.config)
    print(f"{len(utts)} utterances, front end {time.perf_counter() - t:.1f}s")
    splits = {}
    for task in args.task:
        splits[task] = (keyword_split(utts, tuple(args.test_speakers), tuple(args.val_speakers))
                        if task == "keyword" else speaker_split(utts, min_clips=args.min_clips))

    jobs = []  # (upstream name, seed, builder)
    for up in args.upstream:
        if up == "logmel":
            jobs.append(("logmel", None, lambda: (base, "logmel")))
        elif up == "random":
            for s in args.seeds:
                def make(s=s):
                    torch.manual_seed(s)
                    method = build_method(base.config).eval()
                    if base.config.data.cmvn == "global":  # label-free statistics of the probe set's frames
                        method.set_input_stats(torch.cat(features_for(base.config)))
                    return base, method
                jobs.append(("random", s, make))
        else:
            def make_run(up=up):
                return load_run(Path(up))
            jobs.append((f"tera:{Path(up).name}", None, make_run))

    rows = []
    for name, seed, make in jobs:
        t0 = time.perf_counter()
        recipe, upstream = make()
        x = utterance_features(upstream, features_for(recipe.config), 64, args.pooling,
                               normalize=recipe.config.data.cmvn == "utterance")
        extract_s = time.perf_counter() - t0
        for task, split in splits.items():
            for layer in args.layer if x.shape[1] > 1 else ["last"]:  # log-mel has one "layer"
                t1 = time.perf_counter()
                res = probe(x, split if layer == "weighted" else with_val_in_train(split), layer, 1e-4, seed or 0)
                rows.append({"upstream": name, "seed": seed, "task": task, "layer": layer, "test_acc": res["test"],
                             "extract_s": extract_s, "probe_s": time.perf_counter() - t1,
                             "layer_weights": res.get("weights")})
                from multissl.eval.guards import require_finite

                require_finite(rows[-1], f"speech probe {task}/{layer} of {name}")
                print(json.dumps({k: v for k, v in rows[-1].items() if k != "layer_weights"}))
    print("\n| upstream | task | layer | test accuracy (mean +- std) | n | extract s | probe s |")
    print("|---|---|---|---|---|---|---|")
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        kind = r["upstream"].split(":")[0]
        groups.setdefault((kind, r["task"], r["layer"]), []).append(r)
    for (kind, task, layer), rs in groups.items():
        m, sd = _stats([100 * r["test_acc"] for r in rs])
        ex, pr = _stats([r["extract_s"] for r in rs])[0], _stats([r["probe_s"] for r in rs])[0]
        print(f"| {kind} | {task} | {layer} | {m:.1f} +- {sd:.1f} | {len(rs)} | {ex:.1f} | {pr:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0
