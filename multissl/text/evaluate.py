"""``multissl eval sts``: STS Spearman x 100 (cosine) of any encoder on any STS layout.

The model is an exported multissl folder, any transformers / sentence-transformers folder, a hub id, or
'minilm'; pooling comes from the folder (``multissl_encoder.json`` or sentence-transformers'
``1_Pooling/config.json``) unless ``--pooling`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _folder_pooling(name: str) -> str | None:
    from multissl.encoders.hf import resolve_model

    path = Path(resolve_model(name))
    meta = path / "multissl_encoder.json"
    if meta.exists():
        return json.loads(meta.read_text()).get("pooling")
    st = path / "1_Pooling" / "config.json"
    if st.exists():
        cfg = json.loads(st.read_text())
        if cfg.get("pooling_mode_cls_token"):
            return "cls"
        if cfg.get("pooling_mode_max_tokens"):
            return "max"
        return "mean"
    return None


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="multissl eval sts", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="model folder, hub id, or 'minilm'")
    p.add_argument("--data", default=["stsb/sts-test.csv"], nargs="+",
                   help="STS sets: STS-B csv(.gz), SentEval STS folder / STS.input file, SICK file/folder, hf:NAME:SPLIT")
    p.add_argument("--split", default="test", help="split to read from a folder (train/dev/test)")
    p.add_argument("--pooling", default=None, help="override pooling (mean, cls, cls_before_pooler, pooler, max)")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    args = p.parse_args(argv)

    import torch

    from multissl.encoders.hf import HFEncoder
    from multissl.text.data import load_sts
    from multissl.text.sts import sts_spearman

    data = {source: load_sts(source, args.split) for source in args.data}  # bad data fails before the model loads
    pooling = args.pooling or _folder_pooling(args.model) or "mean"
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    enc = HFEncoder(args.model, pooling=pooling, max_length=args.max_length).to(device).eval()
    scores: dict[str, float] = {}
    for source, parts in data.items():
        for part in parts:
            scores[part.name if len(parts) > 1 else Path(source).name] = sts_spearman(
                lambda b: enc(**b), enc.tokenizer, part, args.max_length, args.batch_size, device)
        if len(parts) > 1:
            from multissl.text.data import load_sts_all

            all_pairs = load_sts_all(source, args.split)
            scores[f"{Path(source).name}/all"] = sts_spearman(lambda b: enc(**b), enc.tokenizer, all_pairs,
                                                              args.max_length, args.batch_size, device)
    from multissl.eval.guards import require_finite

    require_finite(scores, f"STS of {args.model}")
    if args.json:
        print(json.dumps(scores, indent=2))
    else:
        print(f"model {args.model} (pooling {pooling}); Spearman x 100 of cosine similarity")
        for k, v in scores.items():
            print(f"  {k:<40} {v:6.2f}")
    return 0
