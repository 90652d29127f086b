"""WiSE-FT after the fact: interpolate a fine-tuned encoder with the encoder it started from.

``python -m multissl.code.wise --start minilm --tuned RUN/export --alpha 0.5 --out DIR`` writes
``alpha * tuned + (1 - alpha) * start`` as an exported folder (transformers + sentence-transformers),
the weight-space ensemble of Wortsman et al., "Robust fine-tuning of zero-shot models", CVPR 2022
(reference code: mlfoundations/wise-ft, ``wise_ft``: the same per-tensor linear mix). The recipe option
``method.wise_alpha`` does the same inside a ``code.finetune`` run (selection and export).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def wise_export(start: str, tuned: str, alpha: float, out: str | Path) -> Path:
    from multissl.core.momentum import interpolate_weights
    from multissl.encoders.hf import HFEncoder
    from multissl.eval.modelref import exported_model

    def load(ref: str) -> HFEncoder:
        folder = Path(exported_model(ref))
        return HFEncoder.from_folder(folder) if (folder / "multissl_encoder.json").exists() else HFEncoder(str(folder))

    if not 0 <= alpha <= 1:
        raise ValueError("alpha must be in [0, 1]")
    a, b = load(start), load(tuned)
    b.model.load_state_dict(interpolate_weights(a.model.state_dict(), b.model.state_dict(), alpha))
    return b.save_pretrained(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--start", default="minilm", help="the starting encoder (minilm, a folder or a run)")
    p.add_argument("--tuned", required=True, help="the fine-tuned encoder (a run or its export/)")
    p.add_argument("--alpha", type=float, required=True, help="weight of the fine-tuned weights")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    print(wise_export(a.start, a.tuned, a.alpha, a.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
