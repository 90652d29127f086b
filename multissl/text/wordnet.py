"""Build a real English sentence corpus from WordNet 3.0 (Miller 1995; Fellbaum 1998): every synset's
gloss, as ``lemma: definition``, and every quoted usage example, one per line, de-duplicated.

Source: Debian's ``wordnet-base`` package (``apt-get install wordnet-base``; files under
``/usr/share/wordnet``), WordNet 3.0 licence (permissive, keep the notice: ``data/wordnet/LICENSE``).

    python -m multissl.text.wordnet [--wordnet-dir /usr/share/wordnet] [--out data/wordnet/wordnet_sentences.txt.gz]
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
from pathlib import Path

POS_FILES = ("data.noun", "data.verb", "data.adj", "data.adv")
_QUOTED = re.compile(r'"([^"]+)"')


def synset_sentences(line: str) -> list[str]:
    """Sentences of one ``data.*`` line: 'lemma: definition' for each definition, then the examples."""
    if line.startswith("  ") or "|" not in line:
        return []  # licence header lines start with two spaces
    fields, _, gloss = line.partition("|")
    parts = fields.split()
    lemma = parts[4].replace("_", " ") if len(parts) > 4 else ""
    lemma = re.sub(r"\(\w+\)$", "", lemma)  # adjective markers like (a), (p)
    examples = [e.strip() for e in _QUOTED.findall(gloss)]
    definitions = _QUOTED.sub("", gloss)
    out = []
    for d in definitions.split(";"):
        d = d.strip(" ;\t\n")
        if len(d) > 2:
            out.append(f"{lemma}: {d}" if lemma else d)
    out.extend(e for e in examples if len(e.split()) >= 3)
    return out


def build(wordnet_dir: Path, out: Path) -> int:
    """Write the corpus (gzip) and return its number of lines."""
    seen: dict[str, None] = {}
    for name in POS_FILES:
        path = wordnet_dir / name
        if not path.exists():
            raise SystemExit(f"{path} not found: install Debian's wordnet-base (apt-get install -y wordnet-base) "
                             "or pass --wordnet-dir")
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                for s in synset_sentences(line):
                    seen.setdefault(" ".join(s.split()), None)
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8", compresslevel=9) as fh:
        for s in seen:
            fh.write(s + "\n")
    copyright_file = Path("/usr/share/doc/wordnet-base/copyright")
    if copyright_file.exists() and not (out.parent / "LICENSE").exists():
        shutil.copy(copyright_file, out.parent / "LICENSE")
    return len(seen)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--wordnet-dir", type=Path, default=Path("/usr/share/wordnet"))
    p.add_argument("--out", type=Path, default=Path("data/wordnet/wordnet_sentences.txt.gz"))
    args = p.parse_args(argv)
    n = build(args.wordnet_dir, args.out)
    print(f"wrote {n} sentences to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
