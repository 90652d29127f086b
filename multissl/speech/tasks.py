"""The ``speech.tera`` recipe kind: TERA pre-training on unlabelled audio, frozen-feature probes on FSDD.

Pre-training data: FSDD utterances of the non-test speakers with take index >= 5 (so neither the
test speakers theo / yweweler nor the speaker-ID test takes are ever seen) plus any unlabelled corpora
(``data.corpus``: e.g. the manifest written by ``python -m multissl.speech.corpus``). Validation: the
keyword probe trained on three train speakers and scored on the fourth (``data.val_speakers``), and the
speaker probe scored on takes 5-9. Final: keyword on theo + yweweler, speaker ID on takes 0-4, for
TERA and (``eval.baselines``) log-mel features and a randomly initialised encoder of the same shape
(``val/random_*``, ``test/random_*``, ``val/logmel_*``, ``test/logmel_*``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch

from multissl.config import param
from multissl.errors import DataError
from multissl.speech.data import (FrameDataset, chunk_frames, collate_frames, compute_log_mels, load_utterances,
                                  segment_utterances)
from multissl.speech.features import FbankConfig
from multissl.speech.methods import AlterationConfig, TeraMethod
from multissl.speech.models import TeraEncoder
from multissl.speech.probes import FSDD_TEST_SPEAKERS, Split, keyword_split, probe, speaker_split, utterance_features
from multissl.tasks import Task, TaskParts


@dataclass
class SpeechData:
    fsdd: str = param("fsdd/fsdd_subset.tar.gz", "labelled probe set (any layout; shipped FSDD subset, or "
                      "$MULTISSL_DATA/speech/fsdd/fsdd_recordings.tar.gz for all 3,000 files)")
    pretrain_fsdd: bool = param(True, "pre-train on the probe set's train-speaker utterances with take index >= 5")
    corpus: list[str] = param([], "extra unlabelled pre-training corpora (manifest / folder / any layout)")
    test_speakers: list[str] = param(list(FSDD_TEST_SPEAKERS), "speakers never used in pre-training (keyword test)")
    val_speakers: list[str] = param(["nicolas"], "train speaker held out for keyword validation")
    sample_rate: int = param(16000, "audio is resampled to this rate (paper: 16 kHz)")
    n_mels: int = param(80, "mel channels (paper: 80)")
    frame_ms: float = param(25.0, "window length in ms (paper: 25)")
    hop_ms: float = param(10.0, "hop in ms (paper: 10)")
    n_fft: int | None = param(None, "FFT size (None: next power of two of the window, Kaldi's default)")
    high_freq: float = param(0.0, "top mel edge in Hz (<= 0: offset from Nyquist, Kaldi convention)")
    target_db: float | None = param(-25.0, "scale every waveform to this RMS level first (s3prl: -25 dB)")
    cmvn: Literal["utterance", "global", "none"] = param(
        "utterance", "input normalisation: utterance-level CMVN (paper), global (mean / std of the pre-training "
        "frames, keeps each utterance's average spectrum) or none")
    max_frames: int = param(1500, "longer utterances are cut into consecutive pieces (s3prl sequence_length)")
    labels: Literal["words", "superb12"] = param(
        "words", "keyword label set: every word as the layout names it, or SUPERB's 12 keyword-spotting classes "
        "(10 commands + _unknown_ + _silence_ crops of _background_noise_; Speech Commands)")
    segment_seconds: float = param(0.0, "cut long recordings (e.g. LibriSpeech) into segments of this length, "
                                   "split by recording within each speaker (0: off)")


@dataclass
class TeraModel:
    hidden: int = param(768, "Transformer width (paper: 768)")
    layers: int = param(3, "Transformer layers (paper: 3)")
    heads: int = param(12, "attention heads (paper: 12)")
    ffn: int = param(3072, "feed-forward width (paper: 3072)")
    dropout: float = param(0.3, "hidden dropout (s3prl TERA: 0.3)")
    attention_dropout: float = param(0.3, "attention-probability dropout (s3prl TERA: 0.3)")
    layer_norm_eps: float = param(1e-12, "LayerNorm epsilon (s3prl: 1e-12)")
    init_range: float = param(0.02, "std of the normal weight initialisation (s3prl: 0.02)")


@dataclass
class TeraParams:
    time_alteration: bool = param(True, "alter spans of frames (paper: on)")
    mask_proportion: float = param(0.15, "fraction of frames chosen for time alteration (paper: 0.15)")
    mask_span: int = param(7, "consecutive frames per span (paper: 7)")
    p_zero: float = param(0.8, "per utterance: chance the spans are zeroed (paper: 0.8)")
    p_random: float = param(0.1, "per utterance: chance the spans get random frames (paper: 0.1; rest unchanged)")
    frequency_alteration: bool = param(True, "zero one block of mel channels (paper: on)")
    max_frequency: float = param(0.2, "largest block as a fraction of channels (paper: 0.2)")
    magnitude_alteration: bool = param(True, "add Gaussian noise to the input (paper: on)")
    noise_proportion: float = param(0.15, "chance per batch of adding noise (paper: 0.15)")
    noise_std: float = param(0.2, "noise standard deviation (s3prl: 0.2)")
    loss: Literal["l1", "mse"] = param("l1", "reconstruction loss on altered positions (paper: L1)")


@dataclass
class ProbeSettings:
    tasks: list[str] = param(["keyword", "speaker"], "probes to run: keyword (speaker-disjoint), speaker (ID)")
    layer: str = param("last", "features: 'last', 'weighted' (SUPERB learnable sum) or a hidden-state index")
    pooling: Literal["mean", "meanstd"] = param("meanstd", "utterance pooling of frame features")
    weight_decay: float = param(1e-4, "L2 of the logistic-regression probe")
    batch_size: int = param(64, "utterances per feature-extraction batch")
    baselines: bool = param(True, "final evaluation also probes log-mel features and a random-init encoder")


@dataclass
class TeraConfig:
    data: SpeechData = param(SpeechData(), "audio, front end and splits")
    model: TeraModel = param(TeraModel(), "Transformer encoder")
    method: TeraParams = param(TeraParams(), "TERA alterations and loss")
    eval: ProbeSettings = param(ProbeSettings(), "frozen-feature probes")


def fbank_config(d: SpeechData) -> FbankConfig:
    return FbankConfig(sample_rate=d.sample_rate, n_mels=d.n_mels, frame_ms=d.frame_ms, hop_ms=d.hop_ms,
                       n_fft=d.n_fft, high_freq=d.high_freq)


def probe_utterances(d: SpeechData, path: str) -> list:
    """The labelled set's utterances with the recipe's label set and segmentation."""
    utts = load_utterances(path, d.labels)
    return segment_utterances(utts, d.segment_seconds) if d.segment_seconds > 0 else utts


def build_method(cfg: TeraConfig) -> TeraMethod:
    m, t = cfg.model, cfg.method
    enc = TeraEncoder(cfg.data.n_mels, m.hidden, m.layers, m.heads, m.ffn, m.dropout, m.attention_dropout,
                      m.layer_norm_eps, m.init_range)
    alts = AlterationConfig(t.time_alteration, t.mask_proportion, t.mask_span, t.p_zero, t.p_random,
                            t.frequency_alteration, t.max_frequency, t.magnitude_alteration, t.noise_proportion,
                            t.noise_std)
    return TeraMethod(enc, cfg.data.n_mels, alts, t.loss)


def pretrain_features(cfg: TeraConfig, probe_utts, probe_feats) -> tuple[list[torch.Tensor], dict[str, int]]:
    """Log-mel frames of the pre-training utterances (never a test speaker's) and a count per source."""
    test = set(cfg.data.test_speakers)
    feats, counts = [], {}
    if cfg.data.pretrain_fsdd:
        keep = [f for u, f in zip(probe_utts, probe_feats, strict=True)
                if u.speaker not in test and (u.index is None or u.index >= 5) and u.split in (None, "train")]
        feats += keep
        counts["probe-set train speakers"] = len(keep)
    for path in cfg.data.corpus:
        utts = load_utterances(path)
        bad = sorted({u.speaker for u in utts if u.speaker in test})
        if bad:
            raise DataError(f"corpus {path} holds audio of test speaker(s) {bad}; remove it (test speakers are "
                            "never used in pre-training)")
        feats += compute_log_mels(utts, fbank_config(cfg.data), cfg.data.target_db)
        counts[str(path)] = len(utts)
    if not feats:
        raise DataError("No pre-training audio: set data.pretrain_fsdd=true or list data.corpus paths")
    return chunk_frames(feats, cfg.data.max_frames), counts


class TeraTask(Task):
    config_class = TeraConfig
    description = "TERA pre-training with keyword / speaker frozen-feature probes"

    def build(self, recipe) -> TaskParts:
        cfg: TeraConfig = recipe.config
        t0 = time.perf_counter()
        utts = probe_utterances(cfg.data, cfg.data.fsdd)
        feats = compute_log_mels(utts, fbank_config(cfg.data), cfg.data.target_db)
        train_feats, counts = pretrain_features(cfg, utts, feats)
        print(f"[speech.tera] pre-training on {len(train_feats)} utterances {counts}; "
              f"front end {time.perf_counter() - t0:.1f}s")
        method = build_method(cfg)
        if cfg.data.cmvn == "global":
            method.set_input_stats(torch.cat(train_feats))
        splits = {}
        if "keyword" in cfg.eval.tasks:
            splits["keyword"] = keyword_split(utts, tuple(cfg.data.test_speakers), tuple(cfg.data.val_speakers))
        if "speaker" in cfg.eval.tasks:
            splits["speaker"] = speaker_split(utts)
        seed = recipe.train.seed
        utt_cmvn = cfg.data.cmvn == "utterance"
        e = cfg.eval

        def probes(x: torch.Tensor, final: bool) -> dict[str, float]:
            out = {}
            for name, split in splits.items():
                if final:
                    res = probe(x, with_val_in_train(split) if e.layer != "weighted" else split, e.layer,
                                e.weight_decay, seed)
                    out[f"test/{name}_acc"] = res["test"]
                else:
                    res = probe(x, Split(split.train, split.val, [], split.labels), e.layer, e.weight_decay, seed)
                    out[f"val/{name}_acc"] = res["val"]
            return out

        def features(upstream) -> torch.Tensor:
            return utterance_features(upstream, feats, e.batch_size, e.pooling, normalize=utt_cmvn)

        def evaluate(meth) -> dict[str, float]:
            return probes(features(meth), final=False)

        def final(meth) -> dict[str, float]:
            t = time.perf_counter()
            x = features(meth)
            out = {**probes(x, final=False), **probes(x, final=True)}
            out["wall/tera_probe_s"] = time.perf_counter() - t
            if e.baselines:
                t = time.perf_counter()
                out.update(baseline("logmel", features("logmel")))
                out["wall/logmel_probe_s"] = time.perf_counter() - t
                t = time.perf_counter()
                torch.manual_seed(seed)  # the same initial weights the pre-training started from
                rand = build_method(cfg).to(next(meth.parameters()).device)
                rand.input_mean.copy_(meth.input_mean)
                rand.input_std.copy_(meth.input_std)
                out.update(baseline("random", features(rand)))
                out["wall/random_probe_s"] = time.perf_counter() - t
            return out

        def baseline(name: str, x: torch.Tensor) -> dict[str, float]:
            """val/{name}_* and test/{name}_*: the same probes as TERA's (so configurations can be compared
            with the baselines on validation, never on test)."""
            res = {**probes(x, final=False), **probes(x, final=True)}
            return {k.replace("/", f"/{name}_", 1): v for k, v in res.items()}

        return TaskParts(method, FrameDataset(train_feats), collate_fn=partial(collate_frames, normalize=utt_cmvn),
                         evaluate=evaluate,
                         final_evaluate=final)

    def embed_data(self, recipe, path: str):
        cfg: TeraConfig = recipe.config
        utts = probe_utterances(cfg.data, path)
        feats = compute_log_mels(utts, fbank_config(cfg.data), cfg.data.target_db)
        return FrameDataset(feats), partial(collate_frames, normalize=cfg.data.cmvn == "utterance")


def with_val_in_train(split: Split) -> Split:
    """A selection-free probe (converged logistic regression) trains on train + validation."""
    return Split(sorted(split.train + split.val), [], split.test, split.labels)

