"""Encoder (padding invariance, positions, paper size), TERA loss on altered positions only, probes
(utterance, SUPERB weighted layers, frame-level phone probe on a synthetic alignment)."""

import math

import torch

from multissl.speech.features import FbankConfig, log_mel
from multissl.speech.methods import AlterationConfig, TeraMethod
from multissl.speech.models import TeraEncoder, count_parameters, pool, sinusoid_positions
from multissl.speech.probes import Split, alignment_to_frames, frame_features, frame_probe, probe, utterance_features


def test_padding_does_not_change_valid_outputs_and_positions_formula():
    enc = TeraEncoder(80, 32, 2, 4, 64, dropout=0.0, attention_dropout=0.0).eval()
    x = torch.randn(1, 9, 80)
    short = enc(x, torch.tensor([9]))[-1]
    padded = enc(torch.cat([x, torch.randn(1, 5, 80)], 1), torch.tensor([9]))[-1]
    assert torch.allclose(short, padded[:, :9], atol=1e-5)
    assert len(enc(x, torch.tensor([9]))) == 3  # input representation + 2 layers
    pe = sinusoid_positions(50, 16)
    assert math.isclose(pe[7, 4], math.sin(7 / 10000 ** (4 / 16)), rel_tol=1e-5)
    assert math.isclose(pe[7, 5], math.cos(7 / 10000 ** (4 / 16)), rel_tol=1e-5)
    base = TeraMethod(TeraEncoder())  # paper size: about 21 M parameters with the prediction head
    assert 21_000_000 < count_parameters(base) < 23_000_000


def test_loss_only_on_altered_positions():
    torch.manual_seed(0)
    method = TeraMethod(TeraEncoder(8, 16, 1, 2, 32), output_dim=8,
                        alterations=AlterationConfig(frequency=False, magnitude=False))
    batch = {"feats": torch.randn(4, 40, 8), "lengths": torch.tensor([40, 30, 20, 40])}
    out = method(batch)
    assert out.loss.item() > 0 and 0.05 < float(out.logs["altered_fraction"]) < 0.3
    out.loss.backward()
    assert method.encoder.proj.weight.grad.abs().sum() > 0
    emb = method.embed(batch)
    assert emb.shape == (4, 16)


def test_pooling_and_weighted_layer_probe_finds_the_informative_state():
    g = torch.Generator().manual_seed(0)
    n = 300
    y = torch.randint(0, 3, (n,), generator=g)
    noise = torch.randn(n, 3, 6, generator=g)
    x = noise.clone()
    x[:, 1, :3] += 3 * torch.nn.functional.one_hot(y, 3).float()  # only hidden state 1 knows the class
    labels = [str(int(v)) for v in y]
    split = Split(list(range(200)), list(range(200, 250)), list(range(250, 300)), labels)
    res = probe(x, split, "weighted")
    assert res["test"] > 0.9 and max(range(3), key=lambda i: res["weights"][i]) == 1
    assert probe(x, split, 1)["test"] > 0.9 and probe(x, split, "last")["test"] < 0.6
    s = torch.randn(2, 5, 3)
    p = pool(s, torch.tensor([5, 2]))
    assert torch.allclose(p[1, :3], s[1, :2].mean(0), atol=1e-6)
    assert torch.allclose(p[1, 3:], s[1, :2].std(0, unbiased=False), atol=1e-5)


def test_frame_level_phone_probe_on_a_synthetic_alignment():
    """No phone-labelled speech exists offline: TERA's phone-classification probe runs on 'phones' that
    are tones with a known alignment, through the same front end, frame features and probe."""
    sr, cfg = 8000, FbankConfig(sample_rate=8000, n_fft=512)
    freqs = [300.0, 700.0, 1200.0, 2000.0]
    g = torch.Generator().manual_seed(0)
    feats, labels = [], []
    for _ in range(12):
        segs, waves, t = [], [], 0.0
        for _ in range(5):
            k = int(torch.randint(0, 4, (), generator=g))
            dur = 0.08 + 0.1 * float(torch.rand((), generator=g))
            n = int(dur * sr)
            waves.append(0.3 * torch.sin(2 * math.pi * freqs[k] * torch.arange(n) / sr) + 0.01 * torch.randn(n, generator=g))
            segs.append((t, t + n / sr, k))
            t += n / sr
        f = log_mel(torch.cat(waves), cfg)
        feats.append(f)
        labels.append(alignment_to_frames(segs, f.shape[0], cfg.hop / sr, cfg.win / sr))
    assert all(len(lab) == f.shape[0] for lab, f in zip(labels, feats, strict=True))
    acc = frame_probe(frame_features("logmel", feats), labels, list(range(8)), list(range(8, 12)))
    assert acc > 0.85
    enc = TeraMethod(TeraEncoder(80, 32, 2, 4, 64)).eval()
    frames = frame_features(enc, feats)
    assert [fr.shape for fr in frames] == [(f.shape[0], 32) for f in feats]
    assert 0 <= frame_probe(frames, labels, list(range(8)), list(range(8, 12))) <= 1
    x = utterance_features(enc, feats)
    assert x.shape == (12, 3, 64)
