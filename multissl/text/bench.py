"""``multissl bench text``: multissl unsup-SimCSE vs sentence-transformers' unsupervised SimCSE recipe.

Same model, sentences, batch size, max length, learning rate, schedule (linear decay, no warm-up,
no weight decay) and number of steps: (a) the multissl trainer with ``text.simcse`` (mean pooling, no
MLP, temperature 0.05), (b) ``SentenceTransformer.fit`` with ``MultipleNegativesRankingLoss`` (scale
20 = temperature 0.05) on (s, s) pairs. Reported: training sentences/s of each (wall time of the
whole training call), their ratio, and the STS-B dev/test Spearman each reaches (plus the base model's).
sentence-transformers is a dev/bench dependency only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def _sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl bench text", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="minilm")
    p.add_argument("--data", default="wiki1m/wiki1m_head11913.txt.gz")
    p.add_argument("--limit", type=int, default=None, help="first N sentences (default: all = one epoch)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--eval-max-pairs", type=int, default=None, help="evaluate on the first N STS-B pairs only")
    p.add_argument("--skip-peer", action="store_true", help="only the multissl side")
    args = p.parse_args(argv)

    import torch

    from multissl.bench.harness import Measurement, record
    from multissl.encoders.hf import resolve_model
    from multissl.recipes import load_recipe
    from multissl.run import build_parts
    from multissl.text.data import load_sentences, load_sts_all
    from multissl.text.sts import sts_spearman
    from multissl.train.trainer import Trainer

    sentences = load_sentences(args.data, limit=args.limit)
    steps = len(sentences) // args.batch_size
    dev = load_sts_all("stsb/sts-dev.csv.gz", "dev").head(args.eval_max_pairs)
    test = load_sts_all("stsb/sts-test.csv", "test").head(args.eval_max_pairs)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    results: dict[str, dict[str, float]] = {}

    # (a) multissl
    overrides = [f"model.name={args.model}", f"data.train={args.data}", f"train.batch_size={args.batch_size}",
                 f"model.max_length={args.max_length}", f"train.lr={args.lr}", f"train.seed={args.seed}",
                 f"train.max_steps={steps}", "train.eval_every=0", "train.eval_at_start=false",
                 "train.select_metric=null", "train.progress=false", "train.log_every=1000000",
                 "train.checkpoint_every=1000000000"]
    if args.limit:
        overrides.append(f"data.limit={args.limit}")
    recipe = load_recipe("text/simcse-minilm", overrides)
    _, parts = build_parts(recipe)
    parts.evaluate = parts.final_evaluate = parts.export = None
    method = parts.method
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(parts, recipe.train, Path(tmp) / "run", recipe=recipe.to_dict())
        _sync()
        t0 = time.perf_counter()
        trainer.fit()
        _sync()
        ours_s = time.perf_counter() - t0
    method.eval()
    enc = method.hf_encoder()
    results["multissl"] = {
        "seconds": ours_s, "sentences_per_s": steps * args.batch_size / ours_s,
        "dev": sts_spearman(method.embed, enc.tokenizer, dev, 128, 128, device),
        "test": sts_spearman(method.embed, enc.tokenizer, test, 128, 128, device)}
    del method, parts, trainer
    print(json.dumps(results, indent=2))

    if not args.skip_peer:
        from sentence_transformers import InputExample, SentenceTransformer, losses
        from torch.utils.data import DataLoader

        torch.manual_seed(args.seed)
        st = SentenceTransformer(resolve_model(args.model), device=device)
        st.max_seq_length = 128  # evaluation length, as for the multissl side
        results["base"] = {"dev": _st_score(st, dev), "test": _st_score(st, test)}
        st.max_seq_length = args.max_length  # training length
        examples = [InputExample(texts=[s, s]) for s in sentences[: steps * args.batch_size]]
        loader = DataLoader(examples, batch_size=args.batch_size, shuffle=True, drop_last=True)
        loss = losses.MultipleNegativesRankingLoss(st, scale=20.0)
        _sync()
        t0 = time.perf_counter()
        st.fit(train_objectives=[(loader, loss)], epochs=1, warmup_steps=0, scheduler="warmuplinear",
               optimizer_params={"lr": args.lr}, weight_decay=0.0, show_progress_bar=False, use_amp=False)
        _sync()
        peer_s = time.perf_counter() - t0
        st.max_seq_length = 128
        results["sentence-transformers"] = {"seconds": peer_s, "sentences_per_s": steps * args.batch_size / peer_s,
                                            "dev": _st_score(st, dev), "test": _st_score(st, test)}
    print(json.dumps(results, indent=2))
    ours, peer = results["multissl"], results.get("sentence-transformers", {})
    extra = {"steps": steps, "batch_size": args.batch_size, "max_length": args.max_length, "lr": args.lr,
             "model": args.model, "device": device, "base": results.get("base")}
    record([
        Measurement("text", "unsup-SimCSE training throughput", ours["sentences_per_s"], peer.get("sentences_per_s"),
                    "sentences/s", "sentence-transformers MNRL (s,s)", True, extra),
        Measurement("text", "STS-B dev Spearman after training", ours["dev"], peer.get("dev"), "x100",
                    "sentence-transformers MNRL (s,s)", True, extra),
        Measurement("text", "STS-B test Spearman after training", ours["test"], peer.get("test"), "x100",
                    "sentence-transformers MNRL (s,s)", True, extra),
    ])
    return 0


def _st_score(model, pairs) -> float:
    import torch

    from multissl.eval import spearman

    a = model.encode(pairs.s1, batch_size=128, convert_to_tensor=True).float().cpu()
    b = model.encode(pairs.s2, batch_size=128, convert_to_tensor=True).float().cpu()
    return 100.0 * spearman(torch.nn.functional.cosine_similarity(a, b, dim=-1), pairs.scores)
