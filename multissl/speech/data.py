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
- any folder of audio files (unlabelled, for pre-training corpora; LibriSpeech-named ``<speaker>-<chapter>-
  <n>.flac`` files without transcripts get their speaker from the name).

Label sets (``labels``): ``"words"`` (every folder / file label as it is) or ``"superb12"``, SUPERB's
keyword-spotting set on Speech Commands (see :func:`superb12`). Long recordings can be cut into fixed-length
segments with a split by recording (:func:`segment_utterances`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
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
LIBRISPEECH_NAME = re.compile(r"^(\d+)-(\d+)-(\d+)\.(flac|wav)$")
BACKGROUND = "_background_noise_"
SUPERB_COMMANDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN, SILENCE = "_unknown_", "_silence_"
LABEL_SETS = ("words", "superb12")


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
    start: float | None = None  # a segment of the recording: start and duration in seconds
    duration: float | None = None


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
        if BACKGROUND in parts:  # Speech Commands' noise recordings: kept for the _silence_ class only
            out.append(Utterance(f"{BACKGROUND}/{parts[-1]}", data, BACKGROUND))
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
        if label == BACKGROUND:  # kept for the _silence_ class only
            out.append(Utterance(f"{BACKGROUND}/{wav.name}", str(wav), BACKGROUND))
            continue
        if label.startswith("_"):
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
        start, dur = row.get("start"), row.get("duration")  # optional: a segment of the file, in seconds
        out.append(Utterance(str(row["path"]) + ("" if start in (None, "") else f"@{start}"), str(audio),
                             None if label in (None, "") else str(label), row.get("speaker") or None,
                             split=row.get("split") or None, start=None if start in (None, "") else float(start),
                             duration=None if dur in (None, "") else float(dur)))
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


def load_utterances(path: str | Path, labels: str = "words") -> list[Utterance]:
    """Every utterance of a data set in any supported layout (see the module docstring); ``labels``:
    ``"words"`` (as the layout names them) or ``"superb12"`` (:func:`superb12`)."""
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
        utts = [_fsdd(f.name, str(f)) or _libri_name(f) or Utterance(str(f.relative_to(p)), str(f)) for f in files]
    if not utts:
        raise DataError(f"No audio found in {p} (wav / flac / ogg in a supported layout)")
    noise = [u for u in utts if u.label == BACKGROUND]
    utts = [u for u in utts if u.label != BACKGROUND]
    if labels == "superb12" and not any(u.label for u in utts):
        print(f"note: labels=superb12 ignored for {p.name}: no utterance has a word label (speaker probes only)")
    elif labels == "superb12":
        utts = superb12(utts, noise)
    elif labels != "words":
        raise DataError(f"labels must be one of {LABEL_SETS}, got {labels!r}")
    return sorted(utts, key=lambda u: u.name)


def _libri_name(f: Path) -> Utterance | None:
    """A LibriSpeech utterance file without its transcript (speaker = the first part of the id)."""
    m = LIBRISPEECH_NAME.match(f.name)
    return Utterance(f.stem, str(f), None, m.group(1)) if m else None


def _hash01(text: str) -> float:
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def _duration(source: str | bytes) -> float:
    import io

    import soundfile as sf

    info = sf.info(io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else str(source))
    return info.frames / info.samplerate


def superb12(utts: list[Utterance], noise: list[Utterance], balance: bool = True,
             crop_seconds: float = 1.0) -> list[Utterance]:
    """SUPERB's 12-class keyword-spotting label set (Yang et al., SUPERB, Interspeech 2021) on Speech Commands.

    Reference: s3prl ``downstream/speech_commands`` (``dataset.py``, ``expert.py``): the ten commands keep
    their label, every other word becomes ``_unknown_``, and ``_silence_`` is a random 1 s crop of one of
    the ``_background_noise_`` recordings (the same recordings feed every split). Splits: the layout's
    (the official ``validation_list.txt`` / ``testing_list.txt``, which come from the same speaker hash that
    s3prl's ``split_dataset`` recomputes).

    s3prl trains on all ``_unknown_`` clips with a class-balanced ``WeightedRandomSampler`` and crops silence
    afresh at every draw; a frozen-feature probe sees a fixed set, so here (``balance``) each split keeps as
    many ``_unknown_`` clips (chosen by a hash of the file name) and as many fixed ``_silence_`` crops (file and
    offset drawn from a generator seeded by the split and crop number) as the mean count of the ten
    commands in that split: the class balance the sampler gives in expectation, and the composition of
    the official 12-class test archive. SUPERB scores on that separate test archive; here the test split
    is ``testing_list.txt`` relabelled the same way.
    """
    if not noise:
        raise DataError(f"labels=superb12 needs the Speech Commands {BACKGROUND} recordings for the _silence_ "
                        "class; none were found next to the word folders")
    noise = sorted(noise, key=lambda u: u.name)  # the same crops whatever order the layout lists files in
    out: list[Utterance] = []
    unknown: dict[str, list[Utterance]] = {}
    counts: dict[str, dict[str, int]] = {}
    for u in utts:
        if u.label is None:
            continue
        split = u.split or "train"
        if u.label in SUPERB_COMMANDS:
            out.append(u)
            counts.setdefault(split, {}).setdefault(u.label, 0)
            counts[split][u.label] += 1
        else:
            unknown.setdefault(split, []).append(Utterance(u.name, u.source, UNKNOWN, u.speaker, u.index, u.split))
    durations = [_duration(n.source) for n in noise]
    for split in sorted(set(counts) | set(unknown)):
        n_cmd = counts.get(split, {})
        per_class = round(sum(n_cmd.values()) / len(SUPERB_COMMANDS)) if n_cmd else 0
        pool = unknown.get(split, [])
        if balance:
            pool = sorted(pool, key=lambda u: _hash01(f"unknown:{u.name}"))[:per_class]
        out += pool
        rng = random.Random(f"superb12-silence-{split}")
        for k in range(per_class):
            j = rng.randrange(len(noise))
            start = rng.uniform(0.0, max(0.0, durations[j] - crop_seconds))
            out.append(Utterance(f"{SILENCE}/{Path(noise[j].name).stem}@{split}{k}", noise[j].source, SILENCE,
                                 None, split=split, start=start, duration=crop_seconds))
    return out


def within_speaker_parts(names: list[str], test_fraction: float = 0.2, val_fraction: float = 0.1) -> list[str]:
    """'train' / 'validation' / 'test' for each of one speaker's recordings, ordered by a hash of the name:
    ``test_fraction`` to test, ``val_fraction`` to validation (at least one each when there are enough),
    the rest (at least one) to train."""
    order = sorted(range(len(names)), key=lambda i: _hash01(f"utt:{names[i]}"))
    n_test = max(1, round(test_fraction * len(names))) if len(names) >= 2 else 0
    n_val = max(1, round(val_fraction * len(names))) if len(names) - n_test >= 2 else 0
    parts = [""] * len(names)
    for rank, i in enumerate(order):
        parts[i] = "test" if rank < n_test else "validation" if rank < n_test + n_val else "train"
    return parts


def segment_utterances(utts: list[Utterance], seconds: float, test_fraction: float = 0.2,
                       val_fraction: float = 0.1) -> list[Utterance]:
    """Cut every recording into consecutive ``seconds``-long segments (a last piece shorter than half a
    segment is dropped; a recording shorter than one segment stays whole). Recordings without a split get one
    within their speaker (:func:`within_speaker_parts`), so all segments of a recording land in the same
    split: a speaker probe never tests on a piece of a recording it was trained on."""
    by_speaker: dict[str | None, list[int]] = {}
    for i, u in enumerate(utts):
        by_speaker.setdefault(u.speaker, []).append(i)
    split = [u.split for u in utts]
    for spk, idx in by_speaker.items():
        if spk is None:
            continue
        free = [i for i in idx if utts[i].split is None]
        for i, part in zip(free, within_speaker_parts([utts[i].name for i in free], test_fraction, val_fraction),
                           strict=True):
            split[i] = part
    out = []
    for u, part in zip(utts, split, strict=True):
        total = _duration(u.source) if u.duration is None else u.duration
        first = u.start or 0.0
        n = max(1, int(total // seconds) + (total % seconds >= seconds / 2))
        for k in range(n):
            dur = min(seconds, total - k * seconds) if n > 1 else total
            out.append(Utterance(f"{u.name}@{k}", u.source, u.label, u.speaker, u.index, part, u.text,
                                 first + k * seconds, dur))
    return out


def compute_log_mels(utts: list[Utterance], cfg: FbankConfig, target_db: float | None = -25.0) -> list[torch.Tensor]:
    """Log-mel frames (F_i, n_mels) of each utterance (no CMVN), resampled to ``cfg.sample_rate``; prints
    one line when any utterance was recorded at another rate (resampling is never silent)."""
    out = []
    rates: dict[int, int] = {}
    for u in utts:
        sr = native_rate(u.source)
        rates[sr] = rates.get(sr, 0) + 1
        wave = load_audio(u.source, cfg.sample_rate)
        if u.start is not None or u.duration is not None:
            a = round((u.start or 0.0) * cfg.sample_rate)
            wave = wave[a : a + round(u.duration * cfg.sample_rate)] if u.duration is not None else wave[a:]
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
