"""Frozen-feature probes for speech: splits, utterance features from an upstream, and classifiers.

Upstreams: ``"logmel"`` (statistics of the log-mel frames themselves) or a :class:`TeraMethod`
(trained or randomly initialised). Features are pooled per utterance over valid frames
(mean + std, "statistics pooling") for every hidden state, so a SUPERB-style learnable weighted sum of
layers (Yang et al., SUPERB, Interspeech 2021) can be trained on the cached pools: pooling is linear
in the frames, so sum_l w_l pool_mean(h_l) = pool_mean(sum_l w_l h_l) for the mean half.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch

from multissl.errors import DataError
from multissl.eval import layer_weighted_probe, linear_probe
from multissl.speech.data import Utterance, collate_frames
from multissl.speech.models import pool

FSDD_TEST_SPEAKERS = ("theo", "yweweler")


@dataclass
class Split:
    """Index lists into an utterance list, and the label of every utterance (str)."""

    train: list[int]
    val: list[int]
    test: list[int]
    labels: list[str]


def _bucket(name: str) -> float:
    return int(hashlib.md5(name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def keyword_split(utts: list[Utterance], test_speakers: tuple[str, ...] = FSDD_TEST_SPEAKERS,
                  val_speakers: tuple[str, ...] = ("nicolas",)) -> Split:
    """Utterance classification, speaker-disjoint. The layout's own split wins (Speech Commands lists,
    a manifest ``split`` column); otherwise speakers in ``test_speakers`` / ``val_speakers`` (FSDD:
    train george, jackson, lucas, nicolas; test theo, yweweler), else speakers hashed 70/10/20."""
    labelled = [i for i, u in enumerate(utts) if u.label is not None]
    if not labelled:
        raise DataError("keyword probe: no utterance has a label")
    speakers = {utts[i].speaker for i in labelled}
    by_name = bool(set(test_speakers) & speakers)
    tr, va, te = [], [], []
    for i in labelled:
        u = utts[i]
        if u.split is not None:
            part = {"validation": va, "test": te}.get(u.split, tr)
        elif by_name:
            part = te if u.speaker in test_speakers else va if u.speaker in val_speakers else tr
        else:
            h = _bucket(f"speaker:{u.speaker or u.name}")
            part = te if h < 0.2 else va if h < 0.3 else tr
        part.append(i)
    return Split(tr, va, te, [u.label or "" for u in utts])


def speaker_split(utts: list[Utterance], test_index: int = 5, val_index: int = 10, min_clips: int = 3,
                  test_fraction: float = 0.2, val_fraction: float = 0.1) -> Split:
    """Speaker identification on held-out utterances of KNOWN speakers: split within each speaker.

    FSDD: take index < 5 is test (the official split), 5-9 validation, 10-49 train. A layout's own
    ``split`` (a manifest column) wins next. Otherwise each speaker's clips, ordered by a hash of the
    file name, give ``test_fraction`` to test and ``val_fraction`` to validation (at least one each) and
    the rest (at least one) to train. Speakers with fewer than ``min_clips`` clips are left out, and so
    are the validation / test clips of a speaker with no training clip (they could only be errors);
    both are counted in the printed note.
    """
    known = [i for i, u in enumerate(utts) if u.speaker is not None]
    if not known:
        raise DataError("speaker probe: no utterance has a speaker")
    by_speaker: dict[str, list[int]] = {}
    for i in known:
        by_speaker.setdefault(utts[i].speaker, []).append(i)
    tr, va, te = [], [], []
    orphans = 0
    few = [s for s, idx in by_speaker.items() if len(idx) < min_clips]
    for spk, idx in by_speaker.items():
        if len(idx) < min_clips:
            continue
        parts: dict[str, list[int]] = {"train": [], "validation": [], "test": []}
        ordered = sorted(idx, key=lambda i: _bucket(f"utt:{utts[i].name}"))
        n_test = max(1, round(test_fraction * len(ordered)))
        n_val = max(1, round(val_fraction * len(ordered))) if len(ordered) - n_test >= 2 else 0
        for rank, i in enumerate(ordered):
            u = utts[i]
            if u.index is not None:
                part = "test" if u.index < test_index else "validation" if u.index < val_index else "train"
            elif u.split is not None:
                part = {"validation": "validation", "val": "validation", "dev": "validation",
                        "test": "test"}.get(u.split, "train")
            else:
                part = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
            parts[part].append(i)
        if not parts["train"]:
            orphans += len(idx)
            continue
        tr += parts["train"]
        va += parts["validation"]
        te += parts["test"]
    if few or orphans:
        print(f"speaker probe: {len(by_speaker) - len(few)} speakers with >= {min_clips} clips kept; {len(few)} "
              f"speakers with fewer and {orphans} clips without a training clip of their speaker left out")
    if not te:
        raise DataError(f"speaker probe: no speaker has {min_clips}+ clips with both train and test ones; lower "
                        "--min-clips or give more clips per speaker")
    return Split(sorted(tr), sorted(va), sorted(te), [u.speaker or "" for u in utts])


def utterance_features(upstream, feats: list[torch.Tensor], batch_size: int = 64, pooling: str = "meanstd",
                       device: torch.device | str | None = None, normalize: bool = True) -> torch.Tensor:
    """(N, S, P) pooled features: S = 1 for ``"logmel"`` (raw log-mel statistics: utterance CMVN would
    make them constant), else the number of hidden states; ``normalize``: utterance CMVN of the input."""
    if isinstance(upstream, str):
        if upstream != "logmel":
            raise ValueError(f"unknown upstream {upstream!r}")
        out = [pool(f[None], torch.tensor([f.shape[0]]), pooling)[0] for f in feats]
        return torch.stack(out)[:, None]
    device = device or next(upstream.parameters()).device
    order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])  # similar lengths per batch
    result: list[torch.Tensor | None] = [None] * len(feats)
    was = upstream.training
    upstream.eval()
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        batch = collate_frames([feats[i] for i in idx], normalize)
        lengths = batch["lengths"].to(device)
        states = upstream.hidden_states({"feats": batch["feats"].to(device), "lengths": lengths})
        pooled = torch.stack([pool(h, lengths, pooling) for h in states], 1).float().cpu()  # (b, S, P)
        for j, i in enumerate(idx):
            result[i] = pooled[j]
    upstream.train(was)
    return torch.stack(result)  # type: ignore[arg-type]


def _encode(labels: list[str], split: Split) -> tuple[torch.Tensor, int]:
    classes = sorted({labels[i] for i in split.train})
    index = {c: k for k, c in enumerate(classes)}
    return torch.tensor([index.get(lab, -1) for lab in labels]), len(classes)


def weighted_layer_probe(x: torch.Tensor, y: torch.Tensor, split: Split, num_classes: int, epochs: int = 300,
                         lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0) -> dict[str, float]:
    """SUPERB-style probe (:func:`multissl.eval.layer_weighted_probe`): softmax weights over the S hidden
    states + one linear layer on pooled features; test accuracy at the epoch of best validation accuracy.
    Pooling is linear, so for mean pooling the weighted sum of pooled states equals SUPERB's pooling of the
    weighted frame-level sum; the std half of mean + std pooling is a weighted sum of per-state stds."""
    return layer_weighted_probe(x, y, split.train, split.val, split.test, num_classes, epochs, lr, weight_decay, seed)


def probe(x: torch.Tensor, split: Split, layer: str | int = "last", weight_decay: float = 1e-4,
          seed: int = 0) -> dict[str, float]:
    """Accuracy of a frozen-feature classifier on ``x`` (N, S, P).

    ``layer``: ``"last"`` or an int picks one hidden state for a converged logistic regression
    (``multissl.eval.linear_probe``, L-BFGS); ``"weighted"`` trains :func:`weighted_layer_probe`.
    Returns {"val": ..., "test": ...}.
    """
    y, c = _encode(split.labels, split)
    if layer == "weighted" and x.shape[1] > 1:
        return weighted_layer_probe(x, y, split, c, weight_decay=weight_decay, seed=seed)
    s = -1 if layer in ("last", "weighted") else int(layer)
    feats = x[:, s]
    tr, va, te = split.train, split.val, split.test
    res = linear_probe(feats[tr], y[tr], feats[te] if te else feats[va], y[te] if te else y[va],
                       feats[va] if va else None, y[va] if va else None, weight_decay=weight_decay)
    return {"val": res.best_val if res.best_val is not None else float("nan"),
            "test": res.last_test if te else float("nan")}


@torch.no_grad()
def frame_features(upstream, feats: list[torch.Tensor], layer: int = -1, batch_size: int = 64,
                   normalize: bool = True) -> list[torch.Tensor]:
    """Per-utterance frame features (F_i, D): the (CMVN) log-mel input for ``"logmel"``, else hidden
    state ``layer`` of the upstream."""
    if isinstance(upstream, str):
        return [collate_frames([f], normalize)["feats"][0] for f in feats]
    device = next(upstream.parameters()).device
    out = []
    for s in range(0, len(feats), batch_size):
        batch = collate_frames(feats[s : s + batch_size], normalize)
        states = upstream.hidden_states({k: v.to(device) for k, v in batch.items()})[layer].cpu()
        out += [states[j, : int(n)] for j, n in enumerate(batch["lengths"])]
    return out


def frame_probe(frames: list[torch.Tensor], labels: list[torch.Tensor], train: list[int], test: list[int],
                weight_decay: float = 1e-4) -> float:
    """Frame classification accuracy (TERA's phone-classification probe): a logistic regression on the
    frames of the ``train`` utterances, scored on every frame of the ``test`` utterances. ``labels`` are
    per-frame class ids (F_i,) from a forced alignment; frames labelled -1 are ignored."""
    from multissl.eval import logistic_regression

    def stack(idx):
        x, y = torch.cat([frames[i] for i in idx]), torch.cat([labels[i] for i in idx])
        keep = y >= 0
        return x[keep], y[keep]

    xtr, ytr = stack(train)
    xte, yte = stack(test)
    predict = logistic_regression(xtr, ytr, weight_decay, num_classes=int(max(ytr.max(), yte.max())) + 1)
    return float((predict(xte).argmax(1) == yte).float().mean())


def alignment_to_frames(segments: list[tuple[float, float, int]], num_frames: int, hop_s: float,
                        win_s: float) -> torch.Tensor:
    """Per-frame labels (num_frames,) from (start s, end s, label) segments, by the frame centre
    (Kaldi ``snip_edges`` framing: frame t covers [t * hop, t * hop + win)); -1 where no segment."""
    centres = torch.arange(num_frames) * hop_s + win_s / 2
    out = torch.full((num_frames,), -1, dtype=torch.long)
    for start, end, lab in segments:
        out[(centres >= start) & (centres < end)] = lab
    return out
