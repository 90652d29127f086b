"""Build an unlabelled speech pre-training corpus: espeak-ng synthesis (+ optional real recordings),
resampled to one rate and mixed with noise. Never includes a test speaker's audio.

    python -m multissl.speech.corpus --out runs/speech-corpus --num 3000 \
        --text $MULTISSL_DATA/wiki1m/wiki1m_head11913.txt.gz [--real PATH --exclude-speakers theo yweweler]

Synthetic utterances: text drawn from the given sentence file(s) (short 1-3 word phrases or chunks of up
to 12 words), one of the installed English espeak-ng voices (``--voices=en``, MBROLA voices skipped)
with a random voice variant (``--voices=variant``), speaking rate and pitch; trimmed, resampled to
``--sample-rate`` with :func:`multissl.speech.audio.resample`, and mixed with white / pink / brown
noise at a random SNR (or left clean). Writes ``<out>/wav/*.wav`` and ``<out>/manifest.jsonl``
(path, speaker, label "", text, source, snr_db) that ``data.corpus`` of a ``speech.tera`` recipe reads.
Needs the ``espeak-ng`` program (Debian / Ubuntu: ``apt-get install espeak-ng``).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import re
import shutil
import subprocess
import time
from pathlib import Path

import torch

from multissl.errors import DataError
from multissl.speech.audio import load_audio, resample, save_audio

DEFAULT_TEXT = "wiki1m/wiki1m_head11913.txt.gz"  # the shipped copy under data/


def espeak_binary() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise DataError("espeak-ng is not installed: `apt-get install espeak-ng` (Debian/Ubuntu) or your OS's package")
    return exe


def _table(args: list[str]) -> list[list[str]]:
    out = subprocess.run([espeak_binary(), *args], capture_output=True, text=True, check=True).stdout
    return [line.split() for line in out.splitlines()[1:] if line.strip()]


def english_voices() -> list[str]:
    """Installed English espeak-ng voices (language codes), MBROLA voices excluded (they need extra data)."""
    voices = sorted({row[1] for row in _table(["--voices=en"])
                     if len(row) >= 5 and row[4].startswith(("gmw/", "en")) and row[1] != "variant"})
    return voices or ["en"]


def voice_variants() -> list[str]:
    """Voice variant names (``!v/<name>`` files), e.g. m3, f2, klatt, whisper."""
    names = sorted({row[4].split("/", 1)[1] for row in _table(["--voices=variant"]) if len(row) >= 5
                    and row[4].startswith("!v/")})
    return names


def read_sentences(paths: list[str]) -> list[str]:
    out = []
    for p in paths:
        from multissl.data import resolve_data_path

        path = resolve_data_path(p, "text file (one sentence per line, .txt or .gz)")
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8", errors="ignore") as fh:
            out += [line.strip() for line in fh if 3 <= len(line.split()) <= 60]
    if not out:
        raise DataError(f"no usable sentences in {paths}")
    return out


def pick_text(sentences: list[str], rng: random.Random) -> str:
    words = re.sub(r"[^\w\s'.,-]", " ", rng.choice(sentences)).split()
    n = rng.randint(1, 3) if rng.random() < 0.5 else rng.randint(4, 12)
    start = rng.randint(0, max(0, len(words) - n))
    return " ".join(words[start : start + n]) or "hello"


def colored_noise(n: int, kind: str, gen: torch.Generator) -> torch.Tensor:
    """White, pink (1/f) or brown (1/f^2) Gaussian noise of unit RMS."""
    white = torch.randn(n, generator=gen)
    if kind == "white":
        return white
    spec = torch.fft.rfft(white)
    f = torch.arange(spec.shape[0], dtype=torch.float32).clamp_min(1.0)
    spec = spec / (f.sqrt() if kind == "pink" else f)
    noise = torch.fft.irfft(spec, n=n)
    return noise / noise.pow(2).mean().sqrt().clamp_min(1e-12)


def mix_noise(wave: torch.Tensor, snr_db: float, kind: str, gen: torch.Generator) -> torch.Tensor:
    power = wave.pow(2).mean().clamp_min(1e-12)
    noise = colored_noise(wave.shape[0], kind, gen) * (power / 10 ** (snr_db / 10)).sqrt()
    return wave + noise


def trim(wave: torch.Tensor, sr: int, threshold_db: float = -40.0, pad_ms: float = 30.0) -> torch.Tensor:
    """Cut leading / trailing silence (frames 40 dB below the peak), keeping a short pad."""
    hop = max(1, sr // 100)
    frames = wave[: wave.shape[0] // hop * hop].view(-1, hop)
    if frames.shape[0] == 0:
        return wave
    energy = 10 * frames.pow(2).mean(1).clamp_min(1e-12).log10()
    loud = (energy > energy.max() + threshold_db).nonzero().view(-1)
    if loud.numel() == 0:
        return wave
    pad = int(pad_ms / 10)
    a, b = max(0, int(loud[0]) - pad) * hop, min(frames.shape[0], int(loud[-1]) + 1 + pad) * hop
    return wave[a:b]


def synthesize(text: str, voice: str, rate: int, pitch: int) -> tuple[torch.Tensor, int]:
    raw = subprocess.run([espeak_binary(), "-v", voice, "-s", str(rate), "-p", str(pitch), "--stdout"],
                         input=text.encode(), capture_output=True, check=True).stdout  # text on stdin
    import io

    import soundfile as sf

    data, sr = sf.read(io.BytesIO(raw), dtype="float32")
    return torch.from_numpy(data if data.ndim == 1 else data.mean(1)), sr


def build_corpus(out: Path, num: int, text_paths: list[str], sample_rate: int = 8000, seed: int = 0,
                 noise_prob: float = 0.7, snr_range: tuple[float, float] = (5.0, 30.0),
                 real: str | None = None, exclude_speakers: tuple[str, ...] = ("theo", "yweweler"),
                 real_min_index: int = 5) -> Path:
    """Write ``num`` synthetic utterances (+ real ones from ``real``) and return the manifest path."""
    rng, gen = random.Random(seed), torch.Generator().manual_seed(seed)
    sentences = read_sentences(text_paths)
    voices, variants = english_voices(), voice_variants()
    wav_dir = out / "wav"
    wav_dir.mkdir(parents=True, exist_ok=True)
    rows = []

    def finish(wave: torch.Tensor, name: str, row: dict) -> None:
        if rng.random() < noise_prob:
            kind = rng.choice(["white", "pink", "brown"])
            row["snr_db"], row["noise"] = round(rng.uniform(*snr_range), 1), kind
            wave = mix_noise(wave, row["snr_db"], kind, gen)
        peak = wave.abs().max().clamp_min(1e-6)
        wave = wave * (0.9 / peak) if peak > 0.9 else wave
        save_audio(wav_dir / name, wave, sample_rate)
        rows.append({"path": f"wav/{name}", "label": "", **row})

    for i in range(num):
        voice = rng.choice(voices)
        variant = rng.choice(variants) if variants and rng.random() < 0.85 else None
        full = f"{voice}+{variant}" if variant else voice
        rate, pitch = rng.randint(110, 230), rng.randint(15, 85)
        text = pick_text(sentences, rng)
        try:
            wave, sr = synthesize(text, full, rate, pitch)
        except subprocess.CalledProcessError:  # a voice / variant this espeak-ng build cannot load
            continue
        wave = trim(resample(wave, sr, sample_rate), sample_rate)
        if wave.numel() < sample_rate // 10:
            continue
        finish(wave, f"syn_{i:06d}.wav", {"speaker": f"espeak:{full}", "text": text, "source": "espeak-ng",
                                          "rate": rate, "pitch": pitch})
    if real:
        from multissl.speech.data import load_utterances

        for u in load_utterances(real):
            if u.speaker in exclude_speakers or (u.index is not None and u.index < real_min_index):
                continue
            wave = load_audio(u.source, sample_rate)
            finish(wave, f"real_{Path(u.name).stem}.wav", {"speaker": u.speaker or "", "source": f"real:{real}"})
    manifest = out / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m multissl.speech.corpus", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="output folder (wav/ + manifest.jsonl)")
    p.add_argument("--num", type=int, default=3000, help="synthetic utterances")
    p.add_argument("--text", nargs="+", default=[DEFAULT_TEXT], help="sentence files (.txt / .gz, one per line)")
    p.add_argument("--sample-rate", type=int, default=8000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--noise-prob", type=float, default=0.7, help="fraction of utterances mixed with noise")
    p.add_argument("--snr", type=float, nargs=2, default=(5.0, 30.0), metavar=("LOW", "HIGH"))
    p.add_argument("--real", help="real recordings to add (any layout of multissl.speech.data)")
    p.add_argument("--exclude-speakers", nargs="*", default=["theo", "yweweler"])
    args = p.parse_args(argv)
    t = time.perf_counter()
    manifest = build_corpus(Path(args.out), args.num, args.text, args.sample_rate, args.seed, args.noise_prob,
                            tuple(args.snr), args.real, tuple(args.exclude_speakers))
    n = sum(1 for _ in manifest.open())
    print(f"wrote {n} utterances to {manifest} in {time.perf_counter() - t:.0f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
