"""kNN and linear-probe scores of frozen features on a train / val / test split, in one place.

Every task that evaluates a frozen encoder by classification (image, tabular, ...) calls
:func:`frozen_scores` instead of nesting the same kNN / probe code in its ``Task.build``.
"""

from __future__ import annotations

from typing import Any

import torch

from multissl.eval.probes import knn_accuracy, linear_probe

Split = tuple[torch.Tensor, torch.Tensor]  # (features (N, D), labels (N,))


def frozen_scores(train: Split, val: Split, test: Split | None = None, *, knn_k: int = 200,
                  knn_temperature: float = 0.1, linear: bool = True, test_bank: Split | None = None,
                  **probe_kwargs: Any) -> dict[str, float]:
    """``val/knn_acc`` (bank: ``train``) and, with ``test``, ``test/knn_acc`` (bank: ``test_bank``, default
    ``train``) plus, with ``linear``, the linear probe fitted on ``train``: ``val/linear_acc`` (its best
    validation epoch) and ``test/linear_acc`` (:func:`linear_probe`'s reported test accuracy).
    ``probe_kwargs`` go to :func:`linear_probe`; labels move to the features' device for the probe."""
    out = {"val/knn_acc": knn_accuracy(train[0], train[1], val[0], val[1], knn_k, knn_temperature)}
    if test is None:
        return out
    bank = test_bank or train
    out["test/knn_acc"] = knn_accuracy(bank[0], bank[1], test[0], test[1], knn_k, knn_temperature)
    if linear:
        dev = train[0].device
        probe = linear_probe(train[0], train[1].to(dev), test[0], test[1].to(dev), val[0], val[1].to(dev),
                             **probe_kwargs)
        out["val/linear_acc"], out["test/linear_acc"] = probe.best_val, probe.last_test
    return out
