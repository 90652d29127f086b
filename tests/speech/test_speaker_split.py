"""Speaker probe split (issue 20): within each speaker, a manifest's ``split`` honoured, ``min_clips``."""

from __future__ import annotations

import pytest

from multissl.errors import DataError
from multissl.speech.data import Utterance
from multissl.speech.probes import speaker_split


def _utts():
    utts = [Utterance(f"a{i}.wav", b"", speaker="a") for i in range(10)]  # hashed within speaker
    utts += [Utterance(f"b{i}.wav", b"", speaker="b") for i in range(2)]  # too few clips
    utts += [Utterance("c0.wav", b"", speaker="c", split="train"), Utterance("c1.wav", b"", speaker="c", split="test"),
             Utterance("c2.wav", b"", speaker="c", split="validation")]  # manifest split
    utts += [Utterance(f"d{i}.wav", b"", speaker="d", split="test") for i in range(3)]  # no training clip
    return utts


def test_every_test_clip_has_a_training_clip_of_its_speaker(capsys):
    utts = _utts()
    sp = speaker_split(utts, min_clips=3)
    train_speakers = {utts[i].speaker for i in sp.train}
    assert {utts[i].speaker for i in sp.test} <= train_speakers
    assert {utts[i].speaker for i in sp.val} <= train_speakers
    assert train_speakers == {"a", "c"}  # b: 2 clips < 3; d: only test clips
    assert [utts[i].name for i in sp.test if utts[i].speaker == "c"] == ["c1.wav"]  # the manifest's split
    assert [utts[i].name for i in sp.val if utts[i].speaker == "c"] == ["c2.wav"]
    a_test = [i for i in sp.test if utts[i].speaker == "a"]
    assert len(a_test) == 2 and len([i for i in sp.val if utts[i].speaker == "a"]) == 1
    assert "1 speakers with fewer and 3 clips" in capsys.readouterr().out


def test_min_clips_too_high_is_a_clear_error():
    with pytest.raises(DataError, match="--min-clips"):
        speaker_split(_utts(), min_clips=50)


def test_resampling_is_announced(tmp_path, capsys):
    """16 kHz audio fed to an 8 kHz front end is resampled with a printed note, never silently."""
    import torch

    from multissl.speech.audio import save_audio
    from multissl.speech.data import compute_log_mels
    from multissl.speech.features import FbankConfig

    wave = torch.sin(torch.arange(16000) * 0.05) * 0.3
    save_audio(tmp_path / "a.wav", wave, 16000)
    save_audio(tmp_path / "b.wav", wave[::2], 8000)
    utts = [Utterance("a.wav", str(tmp_path / "a.wav")), Utterance("b.wav", str(tmp_path / "b.wav"))]
    feats = compute_log_mels(utts, FbankConfig(sample_rate=8000))
    assert len(feats) == 2
    assert "1 at 16000 Hz of 2 utterances resampled to the front end's 8000 Hz" in capsys.readouterr().out
    compute_log_mels(utts[1:], FbankConfig(sample_rate=8000))
    assert "resampled" not in capsys.readouterr().out


def test_speech_commands_archive_is_read_with_its_lists(tmp_path):
    """Issue 20: a Speech Commands .tar.gz is read directly: word labels, speakers, official lists."""
    import io
    import tarfile

    import torch

    from multissl.speech.audio import save_audio
    from multissl.speech.data import load_utterances

    wav = tmp_path / "x.wav"
    save_audio(wav, torch.zeros(1600), 16000)
    data = wav.read_bytes()
    members = {"./yes/aa11_nohash_0.wav": data, "./yes/bb22_nohash_0.wav": data, "./no/aa11_nohash_1.wav": data,
               "./_background_noise_/white_noise.wav": data,
               "./testing_list.txt": b"yes/bb22_nohash_0.wav\n", "./validation_list.txt": b"no/aa11_nohash_1.wav\n"}
    archive = tmp_path / "speech_commands_v0.02.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    utts = {u.name: u for u in load_utterances(str(archive))}
    assert set(utts) == {"yes/aa11_nohash_0.wav", "yes/bb22_nohash_0.wav", "no/aa11_nohash_1.wav"}
    assert utts["yes/bb22_nohash_0.wav"].split == "test" and utts["no/aa11_nohash_1.wav"].split == "validation"
    assert utts["yes/aa11_nohash_0.wav"].label == "yes" and utts["yes/aa11_nohash_0.wav"].speaker == "aa11"
    assert utts["yes/aa11_nohash_0.wav"].split == "train"
