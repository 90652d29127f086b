"""``multissl bench speech``: TERA pre-training throughput and feature-extraction real-time factor.

Measured on the shipped FSDD subset (or ``--data``) with the encoder of ``--recipe``:
- pre-training utterances/s (alteration + forward + backward + AdamW step, batch ``--batch-size``);
- front-end real-time factor (seconds of compute per second of audio) of our torch log-mel against
  ``transformers.audio_utils.spectrogram`` (numpy) computing the same Kaldi-style fbank frames, and
  against ``torchaudio.compliance.kaldi.fbank`` when torchaudio is installed;
- upstream feature-extraction RTF (log-mel + encoder forward, all hidden states).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from multissl.bench.harness import Measurement, record, timed


def _transformers_fbank(wave: np.ndarray, cfg) -> np.ndarray:
    from transformers.audio_utils import spectrogram

    from multissl.speech.features import mel_filters, povey_window

    return spectrogram(wave, povey_window(cfg.win).numpy(), frame_length=cfg.win, hop_length=cfg.hop,
                       fft_length=cfg.fft, power=2.0, center=False, preemphasis=cfg.preemphasis,
                       mel_filters=mel_filters(cfg.fft, cfg.n_mels, cfg.sample_rate, cfg.low_freq, cfg.top).numpy(),
                       log_mel="log", mel_floor=1.192092955078125e-07, remove_dc_offset=True).T


def main(argv: list[str]) -> int:
    from multissl.recipes import load_recipe
    from multissl.speech.audio import load_audio
    from multissl.speech.data import collate_frames, load_utterances
    from multissl.speech.features import log_mel
    from multissl.speech.tasks import build_method, fbank_config

    p = argparse.ArgumentParser(prog="multissl bench speech", description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default="speech/tera-cpu-fsdd")
    p.add_argument("--data", default="fsdd/fsdd_subset.tar.gz")
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    cfg = fbank_config(recipe.config.data)
    utts = load_utterances(args.data)
    waves = [load_audio(u.source, cfg.sample_rate) for u in utts]
    audio_s = sum(w.numel() for w in waves) / cfg.sample_rate
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else None

    ours_fe = timed(lambda: [log_mel(w, cfg) for w in waves], repeats=2)
    peer_fe = timed(lambda: [_transformers_fbank(w.numpy(), cfg) for w in waves], repeats=1)
    rows = [Measurement("speech", f"log-mel front end RTF ({len(waves)} utts, {audio_s:.0f} s audio, cpu)",
                        ours_fe / audio_s, peer_fe / audio_s, "s/s", "transformers.audio_utils.spectrogram",
                        higher_is_better=False)]
    try:
        from torchaudio.compliance import kaldi

        ta = timed(lambda: [kaldi.fbank(w[None], num_mel_bins=cfg.n_mels, sample_frequency=cfg.sample_rate,
                                        dither=0.0) for w in waves])
        rows.append(Measurement("speech", "log-mel front end RTF vs torchaudio", ours_fe / audio_s, ta / audio_s,
                                "s/s", "torchaudio.compliance.kaldi.fbank", higher_is_better=False))
    except ImportError:
        pass

    feats = [log_mel(w, cfg) for w in waves]
    method = build_method(recipe.config).to(dev)
    opt = torch.optim.AdamW(method.parameters(), lr=2e-4)
    g = torch.Generator().manual_seed(0)
    batches = [collate_frames([feats[i] for i in torch.randint(len(feats), (args.batch_size,), generator=g)])
               for _ in range(args.steps + 1)]
    batches = [{k: v.to(dev) for k, v in b.items()} for b in batches]

    def train_steps(bs):
        for b in bs:
            out = method(b)
            opt.zero_grad()
            out.loss.backward()
            opt.step()

    method.train()
    train_steps(batches[:1])  # warm-up
    t = timed(lambda: train_steps(batches[1:]), sync=sync)
    device_name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    rows.append(Measurement("speech", f"TERA pre-training utterances/s (hidden {recipe.config.model.hidden}, "
                            f"batch {args.batch_size}, {device_name})", args.steps * args.batch_size / t, None,
                            "utt/s"))
    method.eval()
    order = sorted(range(len(feats)), key=lambda i: feats[i].shape[0])

    def extract():
        with torch.no_grad():
            for s in range(0, len(order), 64):
                b = collate_frames([log_mel(waves[i], cfg) for i in order[s : s + 64]])
                method.hidden_states({k: v.to(dev) for k, v in b.items()})

    t = timed(extract, sync=sync)
    rows.append(Measurement("speech", f"TERA feature extraction RTF (log-mel + encoder, {device_name})",
                            t / audio_s, None, "s/s", higher_is_better=False))
    record(rows)
    print(f"(measured at {time.strftime('%H:%M:%S')} with {torch.get_num_threads()} torch threads)")
    return 0
