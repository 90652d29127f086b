"""Mine a code-search set (docstring query -> function) from installed Python source, the way
CodeSearchNet was built (Husain et al. 2019, "CodeSearchNet Challenge"), with the cleaning rules of
CodeXGLUE / GraphCodeBERT (Lu et al. 2021; Guo et al. 2021).

For every function or method with a docstring: the query is the docstring's first paragraph (one
line of whitespace-collapsed text), the code is the function's source with the docstring removed.
Filters: query of 3..256 whitespace tokens, English-looking, no URLs / HTML / doctest markers, not
a bare section header ('Returns: ...'); no
tests, no dunder methods, functions of at least 3 code lines and at most ``max_chars`` characters;
exact duplicates (whitespace-normalised code) and near duplicates (token-set Jaccard >= 0.8 found
with MinHash LSH, CodeSearchNet's rule from Allamanis 2019) and duplicate queries are dropped.
Only permissively licensed distributions are mined and each one's licence is recorded. The split is
BY PACKAGE: a distribution of site-packages, or one top-level module of the standard library, lies
in exactly one of train / valid / test.

Rebuild the shipped set with::

    python -m multissl.code.mine --out data/codesearch
"""

from __future__ import annotations

import argparse
import ast
import gzip
import hashlib
import io
import json
import random
import re
import sys
import sysconfig
import textwrap
import tokenize
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PERMISSIVE = ("MIT", "BSD", "APACHE", "PSF", "PYTHON SOFTWARE FOUNDATION", "ISC", "ZLIB", "0BSD", "CC0",
              "BSL-1.0", "CNRI-PYTHON", "LLVM-EXCEPTION", "UNLICENSE", "HPND")
NOT_PERMISSIVE = ("GPL", "MPL", "MOZILLA", "PROPRIETARY", "LICENSEREF", "UNKNOWN", "EUPL", "CDDL", "SSPL")
SKIP_DISTS = {"multissl"}  # this project itself
SKIP_PARTS = {"tests", "test", "testing", "_vendor", "vendor", "vendored", "_vendored", "extern", "_distutils",
              "examples", "benchmarks", "site-packages", "idle_test", "__pycache__"}
STDLIB_SKIP = {"test", "lib2to3", "idlelib", "turtledemo", "ensurepip", "pydoc_data", "config-3.11-x86_64-linux-gnu",
               "tkinter", "turtle"}
STOPWORDS = {"the", "a", "an", "of", "to", "is", "and", "or", "in", "for", "this", "that", "return", "returns",
             "with", "if", "be", "from", "on", "by", "as", "it", "get", "set", "create", "check", "given", "are"}
BAD_QUERY = re.compile(r"https?:|www\.|<img|<[a-z]+[ >]|>>>|\.\. |::\s*$|^:|TODO|FIXME|XXX", re.IGNORECASE)
SECTION_HEADER = re.compile(r"^(args|arguments|parameters|params|returns?|yields?|raises|examples?|notes?|see also|"
                            r"warning|deprecated|attributes)\s*:", re.IGNORECASE)


@dataclass
class Source:
    package: str  # distribution name, or "stdlib-<module>"
    licence: str
    root: Path  # site-packages or the stdlib folder
    files: list[Path]


def licence_of(meta) -> str:
    """The licence a distribution declares (License-Expression, trove classifiers, License field)."""
    expr = meta.get("License-Expression")
    if expr:
        return expr.strip()
    classifiers = [c.split("::")[-1].strip() for c in (meta.get_all("Classifier") or []) if c.startswith("License ::")]
    classifiers = [c for c in classifiers if c not in ("OSI Approved",)]
    if classifiers:
        return " AND ".join(classifiers)
    text = (meta.get("License") or "").strip().splitlines()
    return text[0][:80] if text else "UNKNOWN"


def is_permissive(licence: str) -> bool:
    up = licence.upper()
    return any(p in up for p in PERMISSIVE) and not any(b in up for b in NOT_PERMISSIVE)


def _skip_path(rel: Path) -> bool:
    parts = set(rel.parts[:-1])
    name = rel.name
    return bool(parts & SKIP_PARTS) or name.startswith("test_") or name.endswith("_test.py") or name == "conftest.py" \
        or "test" in {p.lower() for p in rel.parts[:-1]}


def site_sources(site: Path) -> list[Source]:
    import importlib.metadata as md

    out = []
    for dist in md.distributions(path=[str(site)]):
        name = dist.metadata["Name"]
        if not name or name.lower() in SKIP_DISTS:
            continue
        files = [site / f for f in (dist.files or []) if str(f).endswith(".py") and not _skip_path(Path(str(f)))]
        files = [f for f in files if f.exists() and ".dist-info" not in str(f)]
        if files:
            out.append(Source(name, licence_of(dist.metadata), site, sorted(files)))
    return out


def stdlib_sources(stdlib: Path) -> list[Source]:
    """Each top-level module / package of the standard library is one 'package' (PSF-2.0)."""
    groups: dict[str, list[Path]] = defaultdict(list)
    for f in sorted(stdlib.rglob("*.py")):
        rel = f.relative_to(stdlib)
        top = rel.parts[0].removesuffix(".py")
        if top in STDLIB_SKIP or top.startswith("_") or _skip_path(rel):
            continue
        groups[top].append(f)
    return [Source(f"stdlib-{top}", "PSF-2.0", stdlib, files) for top, files in groups.items()]


def first_paragraph(doc: str) -> str:
    para = re.split(r"\n\s*\n", doc.strip(), maxsplit=1)[0]
    return " ".join(para.split())


def english_like(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    if not letters or sum(c.isascii() for c in letters) / len(letters) < 0.95:
        return False
    words = re.findall(r"[a-zA-Z]+", text.lower())
    return any(w in STOPWORDS for w in words) or (len(words) >= 3 and words[0].endswith("s"))


def strip_docstring(source_lines: list[str], node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The function's source (from ``def``) with its docstring statement removed, dedented."""
    doc = node.body[0]
    if doc.lineno == node.lineno or len(node.body) < 2:  # one-line def or docstring-only body
        return None
    start, end = node.lineno - 1, node.end_lineno
    lines = source_lines[start:end]
    d0, d1 = doc.lineno - 1 - start, doc.end_lineno - start
    if source_lines[doc.end_lineno - 1][doc.end_col_offset:].strip():  # code after the docstring on its line
        return None
    kept = lines[:d0] + lines[d1:]
    return textwrap.dedent("".join(kept)).rstrip() + "\n"


def functions_of(path: Path, max_chars: int) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text)
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return []
    lines = text.splitlines(keepends=True)
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        name = node.name
        if (name.startswith("__") and name.endswith("__")) or "test" in name.lower():
            continue
        doc = ast.get_docstring(node, clean=True)
        if not doc:
            continue
        query = first_paragraph(doc)
        ntok = len(query.split())
        if ntok < 3 or ntok > 256 or BAD_QUERY.search(query) or SECTION_HEADER.match(query) or not english_like(query):
            continue
        code = strip_docstring(lines, node)
        if code is None or len(code) > max_chars:
            continue
        body_lines = [ln for ln in code.splitlines() if ln.strip() and not ln.strip().startswith("#")]
        if len(body_lines) < 3:
            continue
        out.append({"func_name": name, "lineno": node.lineno, "query": query, "code": code})
    return out


def code_tokens(code: str) -> list[str]:
    """Python tokens of ``code`` (comments and layout dropped), for duplicate detection."""
    toks = []
    try:
        for t in tokenize.generate_tokens(io.StringIO(code).readline):
            if t.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                          tokenize.ENDMARKER):
                continue
            toks.append(t.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        toks = code.split()
    return toks


def _minhash(tokens: set[str], seeds: np.ndarray) -> list[int]:
    """MinHash signature of a token set: one min over (hash xor seed) * odd constant per seed."""
    if not tokens:
        return [0] * len(seeds)
    hashes = np.array([int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little") for t in tokens],
                      dtype=np.uint64)
    mixed = (hashes[None, :] ^ seeds[:, None]) * np.uint64(0x9E3779B97F4A7C15)  # wraps mod 2^64
    return mixed.min(1).tolist()


def deduplicate(rows: list[dict], threshold: float = 0.8, bands: int = 10, rows_per_band: int = 5) -> list[dict]:
    """Drop exact duplicates, duplicate queries and near duplicates (token-set Jaccard >= threshold)."""
    seen_code, seen_query, kept = set(), set(), []
    rng = random.Random(0)
    seeds = np.array([rng.getrandbits(63) for _ in range(bands * rows_per_band)], dtype=np.uint64)
    buckets: dict[tuple, list[int]] = defaultdict(list)
    token_sets: list[set[str]] = []
    for row in rows:
        toks = code_tokens(row["code"])
        key = hashlib.sha1(" ".join(toks).encode()).hexdigest()
        qkey = row["query"].lower()
        if key in seen_code or qkey in seen_query:
            continue
        tset = set(toks)
        sig = _minhash(tset, seeds)
        cands = set()
        for b in range(bands):
            cands.update(buckets.get((b, *sig[b * rows_per_band:(b + 1) * rows_per_band]), []))
        if any(len(tset & token_sets[c]) / max(1, len(tset | token_sets[c])) >= threshold for c in cands):
            continue
        idx = len(kept)
        for b in range(bands):
            buckets[(b, *sig[b * rows_per_band:(b + 1) * rows_per_band])].append(idx)
        token_sets.append(tset)
        seen_code.add(key)
        seen_query.add(qkey)
        kept.append(row)
    return kept


def assign_splits(sizes: dict[str, int], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Packages -> split: shuffled packages fill test, then valid, up to their share; the rest is train."""
    names = sorted(sizes)
    random.Random(seed).shuffle(names)
    total = sum(sizes.values())
    target = {"test": fractions[2] * total, "valid": fractions[1] * total}
    filled = {"test": 0, "valid": 0}
    out = {}
    for name in names:
        n = sizes[name]
        for split in ("test", "valid"):
            if filled[split] + n <= target[split] * 1.05 and n <= 0.25 * target[split]:
                out[name] = split
                filled[split] += n
                break
        else:
            out[name] = "train"
    return out


def mine(site: Path, stdlib: Path, max_chars: int, per_package: int, seed: int, files_per_package: int = 120,
         max_file_bytes: int = 200_000) -> tuple[list[dict], dict]:
    sources = stdlib_sources(stdlib) + site_sources(site)
    licences, rows = {}, []
    rng = random.Random(seed)
    for src in sorted(sources, key=lambda s: s.package.lower()):
        ok = is_permissive(src.licence)
        licences[src.package] = {"licence": src.licence, "permissive": ok, "functions": 0}
        if not ok:
            continue
        files = [f for f in src.files if f.stat().st_size <= max_file_bytes]  # big files are generated code
        if len(files) > files_per_package:
            files = sorted(rng.sample(files, files_per_package))
        found = []
        for f in files:
            rel = f.relative_to(src.root).as_posix()
            for fn in functions_of(f, max_chars):
                fn.update(package=src.package, path=rel, licence=src.licence)
                found.append(fn)
        if len(found) > per_package:
            found = rng.sample(found, per_package)
            found.sort(key=lambda r: (r["path"], r["lineno"]))
        rows.extend(found)
    rows = deduplicate(rows)
    for r in rows:
        licences[r["package"]]["functions"] += 1
    return rows, licences


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="data/codesearch")
    p.add_argument("--site-packages", default=sysconfig.get_paths()["purelib"])
    p.add_argument("--stdlib", default=sysconfig.get_paths()["stdlib"])
    p.add_argument("--max-chars", type=int, default=2000, help="drop functions longer than this (characters)")
    p.add_argument("--per-package", type=int, default=250, help="at most this many functions per package (sampled)")
    p.add_argument("--files-per-package", type=int, default=120, help="parse at most this many files per package (sampled)")
    p.add_argument("--max-file-bytes", type=int, default=200_000, help="skip larger source files (generated code)")
    p.add_argument("--max-total", type=int, default=12000, help="keep at most this many pairs in all")
    p.add_argument("--splits", type=float, nargs=3, default=(0.8, 0.1, 0.1))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    rows, licences = mine(Path(a.site_packages), Path(a.stdlib), a.max_chars, a.per_package, a.seed,
                          a.files_per_package, a.max_file_bytes)
    if len(rows) > a.max_total:  # sample whole packages' rows uniformly, keeping the by-package split
        rows = sorted(random.Random(a.seed).sample(rows, a.max_total), key=lambda r: (r["package"], r["path"], r["lineno"]))
    sizes: dict[str, int] = defaultdict(int)
    for r in rows:
        sizes[r["package"]] += 1
    split_of = assign_splits(dict(sizes), tuple(a.splits), a.seed)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for split in ("train", "valid", "test"):
        part = [r for r in rows if split_of[r["package"]] == split]
        with gzip.open(out / f"{split}.jsonl.gz", "wt", encoding="utf-8", compresslevel=9) as fh:
            for i, r in enumerate(part):
                rec = {"url": f"{r['package']}/{r['path']}#L{r['lineno']}", "package": r["package"],
                       "path": r["path"], "func_name": r["func_name"], "language": "python",
                       "docstring": r["query"], "code": r["code"], "licence": r["licence"]}
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        counts[split] = {"pairs": len(part), "packages": sum(1 for v in split_of.values() if v == split)}
    for name, info in licences.items():
        info["split"] = split_of.get(name)
        info["functions"] = sizes.get(name, 0)
    (out / "licences.json").write_text(json.dumps(licences, indent=1, sort_keys=True))
    (out / "stats.json").write_text(json.dumps({"splits": counts, "python": sys.version.split()[0],
                                                "args": {k: v for k, v in vars(a).items() if k != "out"}}, indent=1))
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
