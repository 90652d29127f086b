"""TERA alterations: span lengths, proportions over many draws, frequency blocks, noise, padding."""

import torch

from multissl.speech.alterations import alter, valid_mask


def _runs(row: torch.Tensor) -> list[int]:
    """Lengths of the runs of True in a 1-D bool tensor."""
    out, n = [], 0
    for v in row.tolist() + [False]:
        if v:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out


def test_time_spans_count_length_and_modes():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(48, 200, 4) + 3  # nonzero everywhere, so zeroed frames are visible
    lengths = torch.randint(60, 201, (48,), generator=g)
    lengths[0] = 200
    modes = []
    fractions = []
    for _ in range(30):
        a = alter(x, lengths, frequency=False, magnitude=False, generator=g)
        tmask = a.mask[..., 0]
        for i, n in enumerate(lengths.tolist()):
            runs = _runs(tmask[i])
            assert runs and all(r >= 7 for r in runs)  # spans of 7 (overlapping spans merge into longer runs)
            count = round(n * 0.15 / 7)
            assert sum(runs) <= count * 7 and tmask[i].sum() >= 7
            fractions.append(float(tmask[i, :n].float().mean()))
            chosen = tmask[i]
            if a.time_mode[i] == 0:
                assert (a.x[i, chosen] == 0).all()
            elif a.time_mode[i] == 1:  # frames copied from other positions of the same utterance
                rows = a.x[i, chosen]
                assert all(((x[i, :n] - r).abs().sum(1) == 0).any() for r in rows)
            else:
                assert torch.equal(a.x[i], x[i])
            assert torch.equal(a.x[i, ~chosen], x[i, ~chosen])
        modes.append(a.time_mode)
    modes = torch.cat(modes + [alter(torch.ones(2000, 30, 1), torch.full((2000,), 30), frequency=False,
                                     magnitude=False, generator=g).time_mode])
    assert abs((modes == 0).float().mean() - 0.8) < 0.03
    assert abs((modes == 1).float().mean() - 0.1) < 0.025
    assert abs((modes == 2).float().mean() - 0.1) < 0.025
    mean_fraction = sum(fractions) / len(fractions)
    assert 0.12 < mean_fraction <= 0.16  # 15% chosen, slightly less where spans overlap


def test_frequency_block_width_and_targets():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 50, 80) + 3
    lengths = torch.full((32,), 50)
    lengths[:8] = 30
    widths = []
    for _ in range(30):
        a = alter(x, lengths, time=False, magnitude=False, generator=g)
        for i in range(32):
            zero_ch = (a.x[i] == 0).all(0)
            w = int(zero_ch.sum())
            widths.append(w)
            assert w <= 16  # up to 20% of 80 channels
            if w:
                assert _runs(zero_ch) == [w]  # one block of consecutive channels
                n = int(lengths[i])
                assert a.mask[i, :n][:, zero_ch].all() and not a.mask[i, n:].any()
    assert 7 < sum(widths) / len(widths) < 9  # uniform on 0..16 -> mean 8
    assert min(widths) == 0 and max(widths) == 16


def test_magnitude_noise_probability_and_padding_untouched():
    g = torch.Generator().manual_seed(2)
    x = torch.nn.utils.rnn.pad_sequence([torch.randn(n, 10) for n in (40, 25, 12, 3)], batch_first=True)
    lengths = torch.tensor([40, 25, 12, 3])
    pad = ~valid_mask(lengths, 40)
    draws = 1500
    noisy = sum(bool((alter(x, lengths, time=False, frequency=False, generator=g).x != x).any())
                for _ in range(draws))
    assert abs(noisy / draws - 0.15) < 0.025  # one dice per batch
    for _ in range(300):  # every alteration on: padding is never altered nor a target
        a = alter(x, lengths, p_noise=0.5, generator=g)
        assert (a.x[pad] == 0).all() and not a.mask[pad].any()
        assert not a.mask[~pad].all()  # noise alone never makes a position a target


def test_short_utterances_never_touch_padding():
    g = torch.Generator().manual_seed(3)
    x = torch.nn.utils.rnn.pad_sequence([torch.ones(n, 6) for n in (5, 9, 30)], batch_first=True)
    lengths = torch.tensor([5, 9, 30])
    for _ in range(200):
        a = alter(x, lengths, proportion=0.5, generator=g)
        pad = ~valid_mask(lengths, 30)
        assert not a.mask[pad].any() and (a.x[pad] == 0).all()
