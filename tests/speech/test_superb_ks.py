"""SUPERB keyword spotting (issue 20): the 12-class label set on a Speech Commands layout, silence crops of
``_background_noise_``, the official lists honoured; the 16 kHz recipe; segments of long recordings split by
recording; utterance CMVN's invariance to a per-channel offset (why it removes speaker information)."""

from __future__ import annotations

import io
import tarfile
from collections import Counter

import pytest
import torch

from multissl.errors import DataError
from multissl.speech.audio import load_audio, normalize_level, save_audio
from multissl.speech.data import (SILENCE, SUPERB_COMMANDS, UNKNOWN, compute_log_mels, load_utterances,
                                  segment_utterances)
from multissl.speech.features import FbankConfig, log_mel
from multissl.speech.probes import keyword_split, speaker_split

SR = 16000
OTHER_WORDS = ("bed", "cat", "marvin")
SPLIT_OF = {"s1": "train", "s2": "validation", "s3": "test"}


def _tone(freq: float, seconds: float = 0.1) -> torch.Tensor:
    t = torch.arange(int(SR * seconds)) / SR
    return 0.3 * torch.sin(2 * torch.pi * freq * t)


def _speech_commands(root, with_noise: bool = True):
    """10 commands x speakers s1 (train) / s2 (validation list) / s3 (testing list), 3 other words (s1 twice),
    and two 3 s background-noise recordings."""
    files = {}
    for k, word in enumerate(SUPERB_COMMANDS + OTHER_WORDS):
        for spk in ("s1", "s2", "s3"):
            files[f"{word}/{spk}_nohash_0.wav"] = _tone(200 + 50 * k)
        if word in OTHER_WORDS:
            files[f"{word}/s1_nohash_1.wav"] = _tone(210 + 50 * k)
    g = torch.Generator().manual_seed(0)
    if with_noise:
        files["_background_noise_/white_noise.wav"] = 0.1 * torch.randn(3 * SR, generator=g)
        files["_background_noise_/pink_noise.wav"] = 0.05 * torch.randn(3 * SR, generator=g).cumsum(0) / 50
    for rel, wave in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        save_audio(root / rel, wave, SR)
    (root / "validation_list.txt").write_text("".join(f"{r}\n" for r in files if "/s2_" in r))
    (root / "testing_list.txt").write_text("".join(f"{r}\n" for r in files if "/s3_" in r))
    return files


def test_superb12_label_set_split_and_balance(tmp_path):
    _speech_commands(tmp_path)
    utts = load_utterances(tmp_path, "superb12")
    labels = Counter(u.label for u in utts)
    assert set(labels) == set(SUPERB_COMMANDS) | {UNKNOWN, SILENCE}  # exactly the 12 classes
    for u in utts:
        if u.label == UNKNOWN:
            assert u.name.split("/")[0] in OTHER_WORDS  # other words, relabelled
        elif u.label in SUPERB_COMMANDS:
            assert u.name.split("/")[0] == u.label
    # the official lists are honoured: a speaker's clips stay in the split its list puts them in
    for u in utts:
        if u.label != SILENCE:
            assert u.split == SPLIT_OF[u.speaker], u.name
    # each split: as many _unknown_ clips and _silence_ crops as the mean command count (1 here)
    for split in ("train", "validation", "test"):
        per = Counter(u.label for u in utts if u.split == split)
        assert set(per.values()) == {1} and len(per) == 12, (split, per)
    sp = keyword_split(utts)
    assert {utts[i].split for i in sp.test} == {"test"} and {utts[i].split for i in sp.val} == {"validation"}
    assert len(sp.train) == len(sp.val) == len(sp.test) == 12
    # the word-level label set is unchanged: every folder its own class, no noise utterance
    words = load_utterances(tmp_path)
    assert {u.label for u in words} == set(SUPERB_COMMANDS + OTHER_WORDS)


def test_silence_is_a_one_second_crop_of_a_background_recording(tmp_path):
    _speech_commands(tmp_path)
    utts = [u for u in load_utterances(tmp_path, "superb12") if u.label == SILENCE]
    assert len(utts) == 3
    cfg = FbankConfig(sample_rate=SR)
    feats = compute_log_mels(utts, cfg)
    assert len({(u.source, u.start) for u in utts}) == 3  # different crops
    for u, f in zip(utts, feats, strict=True):
        assert "_background_noise_" in u.source and u.duration == 1.0
        assert 0.0 <= u.start <= 2.0  # inside the 3 s recording
        assert f.shape[0] == cfg.num_frames(SR)  # 98 frames: exactly one second
        full = load_audio(u.source, SR)
        a = round(u.start * SR)
        expected = log_mel(normalize_level(full[a : a + SR], -25.0), cfg)
        assert torch.allclose(f, expected, atol=1e-4)


def test_superb12_from_the_archive_matches_the_folder(tmp_path):
    root = tmp_path / "sc"
    files = _speech_commands(root)
    archive = tmp_path / "speech_commands_v0.01.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for rel in [*files, "validation_list.txt", "testing_list.txt"]:
            data = (root / rel).read_bytes()
            info = tarfile.TarInfo(f"./{rel}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    a = load_utterances(archive, "superb12")
    b = load_utterances(root, "superb12")
    assert [(u.name, u.label, u.split, u.start) for u in a] == [(u.name, u.label, u.split, u.start) for u in b]


def test_superb12_without_background_noise_is_a_clear_error(tmp_path):
    _speech_commands(tmp_path, with_noise=False)
    with pytest.raises(DataError, match="_background_noise_"):
        load_utterances(tmp_path, "superb12")


def test_16khz_recipe_front_end_and_label_set():
    from multissl.recipes import load_recipe
    from multissl.speech.tasks import fbank_config

    cfg = load_recipe("speech/tera-superb-ks").config
    fb = fbank_config(cfg.data)
    assert cfg.data.labels == "superb12" and cfg.data.cmvn == "utterance"
    assert (fb.sample_rate, fb.n_mels, fb.win, fb.hop) == (16000, 80, 400, 160)  # 25 ms / 10 ms at 16 kHz
    assert fb.top == 8000.0


def test_segments_keep_a_recording_in_one_split(tmp_path):
    """LibriSpeech-named files without transcripts: speaker from the name; 2 s segments of 5 s recordings,
    every segment of a recording in the same split, and the speaker probe honours it."""
    for spk in ("84", "174"):
        for n in range(5):
            d = tmp_path / spk / "1000"
            d.mkdir(parents=True, exist_ok=True)
            save_audio(d / f"{spk}-1000-{n:04d}.flac", _tone(150 + 40 * n + int(spk), 5.0), SR)
    utts = load_utterances(tmp_path)
    assert {u.speaker for u in utts} == {"84", "174"}
    assert [u.name for u in load_utterances(tmp_path, "superb12")] == [u.name for u in utts]  # no labels: as is
    segs = segment_utterances(utts, 2.0)
    assert len(segs) == 2 * 5 * 3  # 2 + 2 + the last 1 s (>= half a segment)
    by_rec: dict[str, set] = {}
    for s in segs:
        by_rec.setdefault(s.name.split("@")[0], set()).add(s.split)
    assert all(len(v) == 1 for v in by_rec.values())
    assert Counter(next(iter(v)) for v in by_rec.values()) == {"train": 6, "test": 2, "validation": 2}
    feats = compute_log_mels(segs[:3], FbankConfig(sample_rate=SR))
    assert [f.shape[0] for f in feats] == [198, 198, 98]
    sp = speaker_split(segs)
    assert all(segs[i].split == "test" for i in sp.test) and all(segs[i].split == "train" for i in sp.train)


def test_utterance_cmvn_is_blind_to_a_per_channel_offset():
    """A constant per-channel log-mel offset (a fixed spectral colouring: a speaker's or a channel's average
    spectrum) is removed by utterance CMVN, so the encoder cannot see it; without CMVN it can."""
    from multissl.speech.methods import TeraMethod
    from multissl.speech.models import TeraEncoder
    from multissl.speech.probes import utterance_features

    torch.manual_seed(0)
    method = TeraMethod(TeraEncoder(80, 32, 2, 2, 64, 0.0, 0.0), 80).eval()
    base = torch.randn(50, 80)
    tilt = torch.linspace(-2, 2, 80)  # spectral tilt
    x = [base, base + tilt]
    with_cmvn = utterance_features(method, x, normalize=True)
    without = utterance_features(method, x, normalize=False)
    assert torch.allclose(with_cmvn[0], with_cmvn[1], atol=1e-4)
    assert (without[0] - without[1]).abs().max() > 0.1


def test_eval_speech_superb12(tmp_path, capsys):
    """`multissl eval speech --labels superb12` probes the 12 classes on the official lists (one test clip per
    class here); `--set` overrides reach the random encoder's recipe."""
    import json

    from multissl.speech.evaluate import main

    _speech_commands(tmp_path / "sc")
    out = tmp_path / "rows.json"
    assert main(["--data", str(tmp_path / "sc"), "--recipe", "speech/tera-superb-ks", "--labels", "superb12",
                 "--task", "keyword", "--upstream", "logmel", "random", "--seeds", "0", "--json", str(out),
                 "--layer", "last", "weighted", "--set", "model.hidden=16", "model.heads=2", "model.ffn=32",
                 "data.cmvn=none"]) == 0
    rows = json.loads(out.read_text())
    assert [(r["upstream"], r["layer"]) for r in rows] == [("logmel", "last"), ("random", "last"),
                                                           ("random", "weighted")]
    assert len(rows[-1]["layer_weights"]) == 4  # input representation + the recipe's 3 layers
    printed = capsys.readouterr().out
    assert "36 utterances" in printed and "| logmel | keyword | last |" in printed  # 12 classes x 3 splits
