"""Speech data layouts -> one list of :class:`Utterance`, and log-mel banks / padded batches from them.

Layouts read by :func:`load_utterances` (the probe command takes any of them):

- FSDD: a folder or ``.tar(.gz)`` of ``{digit}_{speaker}_{index}.wav`` (label = digit);
- Speech Commands: ``<label>/<file>.wav`` folders with ``testing_list.txt`` / ``validation_list.txt``
  (speaker = the file-name part before ``_nohash_``);
- LibriSpeech: ``<speaker>/<chapter>/*.flac`` with ``<speaker>-<chapter>.trans.txt`` transcripts;
- a manifest ``.csv`` / ``.jsonl`` with columns ``path`` (relative to the manifest), ``label``,
  ``speaker`` and optionally ``split`` (train / validation / test);
- a Hugging Face ``datasets`` folder (``save_to_disk``) or ``.parquet`` with an audio column, read with
  decoding off and decoded here (``label`` / ``speaker_id`` / ``speaker`` columns when present);
- any folder of audio files (unlabelled, for pre-training corpora).
"""

from __future__ import annotations

import csv
import json
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import Dataset

from multissl.data import resolve_data_path
from multissl.errors import DataError
from multissl.speech.audio import load_audio, normalize_level
from multissl.speech.features import FbankConfig, cmvn, log_mel

AUDIO_EXT = (".wav", ".flac", ".ogg")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


@dataclass
class Utterance:
    """One recording: where its audio is (path or encoded bytes) and what is known about it."""

    name: str
    source: str | bytes
    label: str | None = None
    speaker: str | None = None
    index: int | None = None  # FSDD take index (0-49)
    split: str | None = None  # 'train' / 'validation' / 'test' when the layout says so
    text: str | None = None


def _fsdd(name: str, source: str | bytes) -> Utterance | None:
    m = FSDD_NAME.match(Path(name).name)
    if not m:
        return None
    return Utterance(Path(name).name, source, m.group(1), m.group(2), int(m.group(3)))


def _from_tar(path: Path) -> list[Utterance]:
    """Utterances of an archive: FSDD file names, or the Speech Commands layout (``<word>/<speaker>_nohash_
    <n>.wav`` with ``testing_list.txt`` / ``validation_list.txt``), read in memory; other audio unlabelled."""
    audio: list[tuple[str, bytes]] = []
    lists: dict[str, str] = {}
    with tarfile.open(path) as tar:
        for member in tar:
            if not member.isfile():
                continue
            name = member.name[2:] if member.name.startswith("./") else member.name
            base = Path(name).name
            if base in ("testing_list.txt", "validation_list.txt"):
                split = "test" if base.startswith("testing") else "validation"
                text = tar.extractfile(member).read().decode()
                lists.update({ln.strip(): split for ln in text.splitlines() if ln.strip()})
            elif name.lower().endswith(AUDIO_EXT):
                audio.append((name, tar.extractfile(member).read()))
    out = []
    for name, data in audio:
        parts = Path(name).parts
        if "_background_noise_" in parts:  # Speech Commands' noise recordings: not utterances
            continue
        if len(parts) >= 2 and "_nohash_" in parts[-1]:  # Speech Commands: <word>/<speaker>_nohash_<n>.wav
            label = parts[-2]
            rel = f"{label}/{parts[-1]}"
            out.append(Utterance(rel, data, label, parts[-1].split("_nohash_")[0], split=lists.get(rel, "train")))
        else:
            out.append(_fsdd(name, data) or Utterance(name, data))
    return out


def _speech_commands(root: Path) -> list[Utterance]:
    lists = {}
    for split, fname in (("test", "testing_list.txt"), ("validation", "validation_list.txt")):
        f = root / fname
        if f.exists():
            lists.update({line.strip(): split for line in f.read_text().splitlines() if line.strip()})
    out = []
    for wav in sorted(root.glob("*/*.wav")):
        label = wav.parent.name
        if label.startswith("_"):  # _background_noise_
            continue
        rel = f"{label}/{wav.name}"
        out.append(Utterance(rel, str(wav), label, wav.name.split("_nohash_")[0], split=lists.get(rel, "train")))
    return out


def _librispeech(root: Path) -> list[Utterance]:
    out = []
    for trans in sorted(root.glob("**/*.trans.txt")):
        for line in trans.read_text().splitlines():
            if not line.strip():
                continue
            uid, _, text = line.partition(" ")
            audio = trans.parent / f"{uid}.flac"
            if audio.exists():
                out.append(Utterance(uid, str(audio), None, uid.split("-")[0], text=text))
    return out


def _manifest(path: Path) -> list[Utterance]:
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    else:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    out = []
    for i, row in enumerate(rows):
        if "path" not in row:
            raise DataError(f"{path}: row {i} has no 'path' column (columns: path, label, speaker, split)")
        audio = Path(row["path"])
        audio = audio if audio.is_absolute() else path.parent / audio
        label = row.get("label")
        out.append(Utterance(str(row["path"]), str(audio), None if label in (None, "") else str(label),
                             row.get("speaker") or None, split=row.get("split") or None))
    return out


def _hf_dataset(path: Path) -> list[Utterance]:
    import datasets

    ds = (datasets.Dataset.from_parquet(str(path)) if path.suffix == ".parquet"
          else datasets.load_from_disk(str(path)))
    if isinstance(ds, datasets.DatasetDict):
        parts = [(split, d) for split, d in ds.items()]
    else:
        parts = [(None, ds)]
    out = []
    for split, d in parts:
        column = next((c for c, f in d.features.items() if isinstance(f, datasets.Audio)), "audio")
        if column not in d.column_names:
            raise DataError(f"{path}: no audio column (looked for an Audio feature or a column named 'audio')")
        d = d.cast_column(column, datasets.Audio(decode=False))
        label_names = getattr(d.features.get("label"), "names", None)
        for i, row in enumerate(d):
            audio = row[column]
            src = audio.get("bytes") or audio.get("path")
            label = row.get("label")
            if label is not None and label_names:
                label = label_names[label]
            speaker = row.get("speaker_id", row.get("speaker"))
            out.append(Utterance(audio.get("path") or f"{split}-{i}", src, None if label is None else str(label),
                                 None if speaker is None else str(speaker),
                                 split={"valid": "validation", "dev": "validation"}.get(split, split)))
    return out


def load_utterances(path: str | Path) -> list[Utterance]:
    """Every utterance of a data set in any supported layout (see the module docstring)."""
    p = resolve_data_path(path, "speech data")
    if p.is_file():
        if p.name.endswith((".tar", ".tar.gz", ".tgz")):
            utts = _from_tar(p)
        elif p.suffix in (".csv", ".jsonl"):
            utts = _manifest(p)
        elif p.suffix == ".parquet":
            utts = _hf_dataset(p)
        elif p.suffix.lower() in AUDIO_EXT:
            utts = [Utterance(p.name, str(p))]
        else:
            raise DataError(f"{p}: unknown speech data file (expected .tar.gz, .csv, .jsonl, .parquet or audio)")
    elif (p / "dataset_info.json").exists() or (p / "dataset_dict.json").exists():
        utts = _hf_dataset(p)
    elif (p / "testing_list.txt").exists() or (p / "validation_list.txt").exists():
        utts = _speech_commands(p)
    elif next(p.glob("**/*.trans.txt"), None) is not None:
        utts = _librispeech(p)
    elif (p / "manifest.jsonl").exists():
        utts = _manifest(p / "manifest.jsonl")
    else:
        files = sorted(f for f in p.rglob("*") if f.suffix.lower() in AUDIO_EXT)
        utts = [_fsdd(f.name, str(f)) or Utterance(str(f.relative_to(p)), str(f)) for f in files]
    if not utts:
        raise DataError(f"No audio found in {p} (wav / flac / ogg in a supported layout)")
    return sorted(utts, key=lambda u: u.name)


def compute_log_mels(utts: list[Utterance], cfg: FbankConfig, target_db: float | None = -25.0) -> list[torch.Tensor]:
    """Log-mel frames (F_i, n_mels) of each utterance (no CMVN), resampled to ``cfg.sample_rate``; prints
    one line when any utterance was recorded at another rate (resampling is never silent)."""
    out = []
    rates: dict[int, int] = {}
    for u in utts:
        sr = native_rate(u.source)
        rates[sr] = rates.get(sr, 0) + 1
        wave = load_audio(u.source, cfg.sample_rate)
        if target_db is not None:
            wave = normalize_level(wave, target_db)
        out.append(log_mel(wave, cfg))
    other = {r: n for r, n in rates.items() if r != cfg.sample_rate}
    if other:
        listed = ", ".join(f"{n} at {r} Hz" for r, n in sorted(other.items()))
        print(f"note: {listed} of {len(utts)} utterances resampled to the front end's {cfg.sample_rate} Hz "
              f"(data.sample_rate); a recipe at the data's rate keeps the full band")
    return out


def native_rate(source: str | bytes) -> int:
    """The sample rate an audio file (path or encoded bytes) was recorded at (header only)."""
    import io

    import soundfile as sf

    try:
        return int(sf.info(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source)).samplerate)
    except (RuntimeError, TypeError):
        return -1  # undecodable: load_audio raises the clear error


def chunk_frames(feats: list[torch.Tensor], max_frames: int) -> list[torch.Tensor]:
    """Split utterances longer than ``max_frames`` into consecutive pieces (no audio is dropped)."""
    if not max_frames:
        return feats
    out = []
    for f in feats:
        out.extend(f.split(max_frames) if f.shape[0] > max_frames else [f])
    return out


class FrameDataset(Dataset):
    """Log-mel utterances (F_i, D); batches come from :func:`collate_frames`."""

    def __init__(self, feats: list[torch.Tensor]) -> None:
        self.feats = feats

    def __len__(self) -> int:
        return len(self.feats)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.feats[i]


def collate_frames(items: list[torch.Tensor], normalize: bool = True) -> dict[str, torch.Tensor]:
    """Pad (F_i, D) utterances to {"feats": (B, F_max, D), "lengths": (B,)}, with utterance CMVN."""
    lengths = torch.tensor([x.shape[0] for x in items])
    feats = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
    if normalize:
        feats = cmvn(feats, lengths)
    return {"feats": feats, "lengths": lengths}
