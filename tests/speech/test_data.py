"""Speech layouts (FSDD tar, Speech Commands, LibriSpeech, manifests, datasets audio columns), splits,
padding and the corpus builder."""

import json
import math
import shutil

import pytest
import torch

from multissl.speech.audio import save_audio
from multissl.speech.data import chunk_frames, collate_frames, load_utterances
from multissl.speech.probes import keyword_split, speaker_split


def _tone(freq: float, n: int = 4000, sr: int = 8000) -> torch.Tensor:
    return 0.3 * torch.sin(2 * math.pi * freq * torch.arange(n) / sr)


def test_shipped_fsdd_subset_and_splits():
    utts = load_utterances("fsdd/fsdd_subset.tar.gz")
    assert len(utts) == 360
    assert {u.speaker for u in utts} == {"george", "jackson", "lucas", "nicolas", "theo", "yweweler"}
    assert {u.label for u in utts} == {str(d) for d in range(10)}
    kw = keyword_split(utts)
    assert {utts[i].speaker for i in kw.test} == {"theo", "yweweler"}
    assert {utts[i].speaker for i in kw.val} == {"nicolas"}
    assert not {utts[i].speaker for i in kw.train} & {"theo", "yweweler", "nicolas"}
    sp = speaker_split(utts)
    assert {utts[i].index for i in sp.test} == {0, 1} and {utts[i].index for i in sp.val} == {5}
    assert all(utts[i].index >= 10 for i in sp.train) and sp.labels[sp.test[0]] == utts[sp.test[0]].speaker


def test_speech_commands_librispeech_manifest_and_folder_layouts(tmp_path):
    sc = tmp_path / "sc"
    for label in ("yes", "no"):
        (sc / label).mkdir(parents=True)
        for spk in ("aa11", "bb22", "cc33"):
            save_audio(sc / label / f"{spk}_nohash_0.wav", _tone(300 if label == "yes" else 600), 8000)
    (sc / "testing_list.txt").write_text("yes/cc33_nohash_0.wav\nno/cc33_nohash_0.wav\n")
    (sc / "validation_list.txt").write_text("yes/bb22_nohash_0.wav\n")
    utts = load_utterances(sc)
    assert len(utts) == 6 and {u.speaker for u in utts} == {"aa11", "bb22", "cc33"}
    split = keyword_split(utts)
    assert {utts[i].speaker for i in split.test} == {"cc33"} and len(split.val) == 1

    ls = tmp_path / "libri" / "19" / "198"
    ls.mkdir(parents=True)
    for k in range(2):
        save_audio(ls / f"19-198-{k:04d}.flac", _tone(200 + 100 * k), 16000)
    (ls / "19-198.trans.txt").write_text("19-198-0000 HELLO WORLD\n19-198-0001 GOOD BYE\n")
    lib = load_utterances(tmp_path / "libri")
    assert [u.speaker for u in lib] == ["19", "19"] and lib[1].text == "GOOD BYE"

    wavs = tmp_path / "plain"
    wavs.mkdir()
    for k in range(3):
        save_audio(wavs / f"a{k}.wav", _tone(400), 8000)
    rows = [{"path": f"plain/a{k}.wav", "label": "x" if k else "y", "speaker": f"s{k}"} for k in range(3)]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "m.csv").write_text("path,label,speaker\n" + "".join(f"{r['path']},{r['label']},{r['speaker']}\n"
                                                                      for r in rows))
    for name in ("m.jsonl", "m.csv"):
        got = load_utterances(tmp_path / name)
        assert [u.label for u in got] == ["y", "x", "x"] and got[0].speaker == "s0"
    assert len(load_utterances(wavs)) == 3


def test_datasets_audio_column_read_without_decoding(tmp_path):
    datasets = pytest.importorskip("datasets")
    save_audio(tmp_path / "a.wav", _tone(500), 8000)
    raw = (tmp_path / "a.wav").read_bytes()
    ds = datasets.Dataset.from_dict({"audio": [{"bytes": raw, "path": "a.wav"}] * 2, "label": [0, 1],
                                     "speaker_id": ["s1", "s2"]})
    ds = ds.cast_column("audio", datasets.Audio(decode=False))
    ds.to_parquet(str(tmp_path / "d.parquet"))
    utts = load_utterances(tmp_path / "d.parquet")
    assert len(utts) == 2 and {u.speaker for u in utts} == {"s1", "s2"} and isinstance(utts[0].source, bytes)
    ds.save_to_disk(str(tmp_path / "saved"))
    assert len(load_utterances(tmp_path / "saved")) == 2


def test_padding_batches_and_chunking_keep_every_frame():
    feats = [torch.randn(n, 5) for n in (7, 3, 12)]
    b = collate_frames(feats, normalize=False)
    assert b["feats"].shape == (3, 12, 5) and b["lengths"].tolist() == [7, 3, 12]
    assert (b["feats"][1, 3:] == 0).all() and torch.equal(b["feats"][0, :7], feats[0])
    pieces = chunk_frames(feats, 5)
    assert sum(p.shape[0] for p in pieces) == 22 and max(p.shape[0] for p in pieces) == 5


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_corpus_builder_writes_a_readable_manifest(tmp_path):
    from multissl.speech.corpus import build_corpus

    text = tmp_path / "t.txt"
    text.write_text("the quick brown fox jumps over the lazy dog\nseven ships sailed into the harbour at dawn\n")
    manifest = build_corpus(tmp_path / "c", 4, [str(text)], sample_rate=8000, seed=0,
                            real="fsdd/fsdd_subset.tar.gz")
    utts = load_utterances(manifest)
    speakers = {u.speaker for u in utts}
    assert sum(s.startswith("espeak:") for s in speakers) >= 1
    assert not speakers & {"theo", "yweweler"}  # test speakers never enter a pre-training corpus
    real = [u for u in utts if not u.speaker.startswith("espeak:")]
    assert len(real) == 4 * 10 * 4  # train speakers, takes >= 5 only (5, 10, 11, 12 in the subset)
