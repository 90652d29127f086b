"""Code-search data: (query, code) training pairs and retrieval sets (queries -> a code base).

Layouts read (one loader, :func:`load_retrieval` / :func:`load_pairs`):

- our mined set (``data/codesearch/{train,valid,test}.jsonl.gz``: ``docstring``, ``code``, ``url``);
- CodeSearchNet jsonl (Husain et al. 2019): ``code`` / ``code_tokens``, ``docstring`` /
  ``docstring_tokens``, ``url`` (queries and code in one file: the code base is the file's code);
- the CodeXGLUE / GraphCodeBERT / UniXcoder retrieval layouts where queries point into a separate code
  base: ``test.jsonl`` + ``codebase.jsonl`` matched by ``url``, AdvTest's ``idx`` /
  ``function_tokens``, and CoSQA's query json with ``retrieval_idx`` + ``code_idx_map.txt``
  (a JSON map code -> index);
- the Hugging Face ``datasets`` ``code_search_net`` layout (``func_code_string``,
  ``func_documentation_tokens``, ``func_code_url``; ``hf:code_search_net[:language]``, online only).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from multissl.data import resolve_data_path
from multissl.errors import DataError

KEY_FIELDS = ("url", "retrieval_idx", "idx")


# MRR cut-off of each published protocol: CodeSearchNet / CodeXGLUE / GraphCodeBERT / AdvTest count ranks
# beyond 1000 as 0; CoSQA's retrieval script ranks the whole code base with no cut-off.
PROTOCOL_MRR_CUTOFF: dict[str, int | None] = {"codesearchnet": 1000, "codexglue": 1000, "advtest": 1000,
                                              "cosqa": None}


@dataclass
class RetrievalSet:
    """Queries, a code base, and the index of each query's code in the code base. ``protocol`` names the
    published layout read (it sets the default MRR cut-off); ``candidates`` says what the queries are
    ranked against, in words, for the output."""

    queries: list[str]
    codes: list[str]
    relevant: list[int]  # (Q,) index into ``codes``
    name: str = ""
    protocol: str = "codesearchnet"
    candidates: str = ""

    def __len__(self) -> int:
        return len(self.queries)

    def head(self, n_queries: int | None) -> RetrievalSet:
        """The first ``n_queries`` queries with the WHOLE code base kept (distractors stay)."""
        if n_queries is None or n_queries >= len(self.queries):
            return self
        return RetrievalSet(self.queries[:n_queries], self.codes, self.relevant[:n_queries], self.name,
                            self.protocol, self.candidates)

    def slice_codebase(self, n: int | None) -> RetrievalSet:
        """Queries whose code lies in the first ``n`` codes, against that smaller code base."""
        if n is None or n >= len(self.codes):
            return self
        keep = [i for i, r in enumerate(self.relevant) if r < n]
        return RetrievalSet([self.queries[i] for i in keep], self.codes[:n], [self.relevant[i] for i in keep], self.name,
                            self.protocol, f"the first {n} of {len(self.codes)} codes (--max-codebase)")

    def gold_only(self) -> RetrievalSet:
        """The same queries ranked against only their own distinct gold codes (not the code base)."""
        order = list(dict.fromkeys(self.relevant))
        new = {old: i for i, old in enumerate(order)}
        return RetrievalSet(self.queries, [self.codes[i] for i in order], [new[r] for r in self.relevant], self.name,
                            self.protocol, f"GOLD-ONLY: the {len(order)} distinct gold codes of these queries, not the "
                            f"code base of {len(self.codes)}")


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_records(path: str | Path) -> list[dict[str, Any]] | dict[str, Any]:
    """Rows of a .jsonl(.gz) file, or the object of a .json / code_idx_map.txt file."""
    p = resolve_data_path(path, "code-search file")
    with _open(p) as fh:
        head = fh.read(1)
        while head and head.isspace():
            head = fh.read(1)
        rest = fh.read()
    text = head + rest
    try:
        if p.name.endswith((".jsonl", ".jsonl.gz")) or (head == "{" and "\n{" in text.strip()):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"Cannot parse {p} as JSON / JSON lines: {exc}") from None


def query_of(rec: dict[str, Any]) -> str:
    """The natural-language query of a record (CodeSearchNet uses the joined docstring tokens)."""
    for field in ("docstring_tokens", "func_documentation_tokens"):
        toks = rec.get(field)
        if isinstance(toks, list) and toks:
            return " ".join(toks)
    for field in ("docstring", "doc", "query", "nl", "func_documentation_string"):
        val = rec.get(field)
        if isinstance(val, str) and val.strip():
            return " ".join(val.split())
    raise DataError(f"record has no query field (docstring_tokens / docstring / doc); keys: {sorted(rec)[:12]}")


def code_of(rec: dict[str, Any]) -> str:
    """The code of a record: raw code when it has no docstring inside, else the joined code tokens."""
    for field in ("code_tokens", "function_tokens", "func_code_tokens"):
        toks = rec.get(field)
        if isinstance(toks, list) and toks:
            return " ".join(toks)  # CodeSearchNet's code_tokens exclude the docstring
    for field in ("code", "function", "original_string", "func_code_string"):
        val = rec.get(field)
        if isinstance(val, str) and val.strip():
            return val
    raise DataError(f"record has no code field (code / code_tokens / function); keys: {sorted(rec)[:12]}")


def key_of(rec: dict[str, Any]) -> Any:
    for field in KEY_FIELDS + ("func_code_url",):
        if field in rec:
            return rec[field]
    return None


def from_hf_rows(rows, name: str = "code_search_net") -> list[dict[str, Any]]:
    """Map rows of the ``datasets`` code_search_net layout onto CodeSearchNet jsonl fields."""
    out = []
    for r in rows:
        out.append({"url": r.get("func_code_url"), "code_tokens": r.get("func_code_tokens"),
                    "code": r.get("func_code_string"), "docstring_tokens": r.get("func_documentation_tokens"),
                    "docstring": r.get("func_documentation_string")})
    return out


def _hf_records(spec: str, split: str) -> list[dict[str, Any]]:
    _, _, rest = spec.partition(":")
    name, _, language = rest.partition(":")
    try:
        import datasets
    except ImportError:
        raise DataError("hf:... data needs the `datasets` package (pip install datasets)") from None
    try:
        ds = datasets.load_dataset(name or "code_search_net", language or "python", split=split)
    except Exception as exc:  # offline, unknown name, ...
        raise DataError(f"Cannot load '{spec}' split '{split}' with datasets: {type(exc).__name__}: "
                        f"{str(exc)[:200]}. Online access is needed, or pass a local jsonl path.") from None
    return from_hf_rows(ds)


def _find_split(folder: Path, split: str) -> Path | None:
    for name in (f"{split}.jsonl.gz", f"{split}.jsonl", f"{split}.json"):
        if (folder / name).exists():
            return folder / name
    found = sorted(folder.glob(f"*{split}*.json*"))
    return found[0] if found else None


def _find_codebase(folder: Path) -> Path | None:
    for name in ("codebase.jsonl.gz", "codebase.jsonl", "code_idx_map.txt", "code_idx_map.txt.gz", "codebase.json"):
        if (folder / name).exists():
            return folder / name
    return None


def records_from_codebase(obj) -> list[dict[str, Any]]:
    """Code-base records from a jsonl list or CoSQA's ``{code: idx}`` map."""
    if isinstance(obj, dict):
        return [{"code": code, "retrieval_idx": idx} for code, idx in obj.items()]
    return list(obj)


def build_retrieval(queries: list[dict[str, Any]], codebase: list[dict[str, Any]] | None, name: str = "") -> RetrievalSet:
    """Pair query records with a code base (their own code when ``codebase`` is None) by url / idx."""
    if codebase is None:
        seen: dict[str, int] = {}
        codes, relevant, qs = [], [], []
        for rec in queries:
            code = code_of(rec)
            if code not in seen:
                seen[code] = len(codes)
                codes.append(code)
            qs.append(query_of(rec))
            relevant.append(seen[code])
        return RetrievalSet(qs, codes, relevant, name)
    codes, index = [], {}
    for rec in codebase:
        k = key_of(rec)
        if k is None:
            raise DataError("code-base records need a 'url', 'retrieval_idx' or 'idx' to match queries")
        index.setdefault(str(k), len(codes))
        codes.append(code_of(rec))
    qs, relevant, missing = [], [], 0
    for rec in queries:
        k = key_of(rec)
        if k is None or str(k) not in index:
            missing += 1
            continue
        qs.append(query_of(rec))
        relevant.append(index[str(k)])
    if not qs:
        raise DataError("no query matches the code base (compare their url / retrieval_idx / idx fields)")
    return RetrievalSet(qs, codes, relevant, name)


def _protocol(queries: list[dict[str, Any]], codebase_obj) -> str:
    if isinstance(codebase_obj, dict) or (queries and "retrieval_idx" in queries[0]):
        return "cosqa"
    if codebase_obj is not None:
        return "codexglue"
    if queries and "idx" in queries[0] and "function_tokens" in queries[0]:
        return "advtest"
    return "codesearchnet"


def load_retrieval(path: str, split: str = "test", codebase: str | None = None,
                   candidates: str = "full") -> RetrievalSet:
    """A retrieval set from a folder (``<split>.jsonl[.gz]`` [+ ``codebase.jsonl`` / ``code_idx_map.txt``]),
    a query file (+ the ``codebase`` file, or one found beside it), or ``hf:code_search_net[:language]``.

    ``candidates='full'`` ranks against the whole code base of the layout: the separate code base when the
    layout has one (CodeXGLUE, CoSQA), else the file's own codes (CodeSearchNet, AdvTest). A CoSQA query
    file without its ``code_idx_map.txt`` is refused; ``candidates='gold-only'`` ranks against the queries'
    own gold codes instead, and the set says so in ``candidates``."""
    if candidates not in ("full", "gold-only"):
        raise DataError(f"candidates must be 'full' or 'gold-only', got '{candidates}'")
    if path.startswith("hf:"):
        rset = build_retrieval(_hf_records(path, split), None, path)
        rset.candidates = f"the {len(rset.codes)} codes of {path} split {split}"
        return rset.gold_only() if candidates == "gold-only" else rset
    p = resolve_data_path(path, "code-search data")
    cb_path: Path | None = resolve_data_path(codebase, "code base") if codebase else None
    if p.is_dir():
        q_path = _find_split(p, split)
        if q_path is None:
            raise DataError(f"{p} has no {split}.jsonl[.gz] / *{split}*.json; choose --split, or pass the query "
                            "file with --codebase FILE (its code base: codebase.jsonl / code_idx_map.txt)")
    else:
        q_path = p
    cb_path = cb_path or _find_codebase(q_path.parent)
    queries = read_records(q_path)
    if isinstance(queries, dict):
        raise DataError(f"{q_path} is a mapping, not a list of query records")
    cb_obj = read_records(cb_path) if cb_path is not None else None
    protocol = _protocol(queries, cb_obj)
    if cb_obj is None and protocol == "cosqa" and candidates == "full":
        raise DataError(f"{q_path} is a CoSQA query file: its code base is code_idx_map.txt, not found beside it. "
                        "Pass --codebase PATH/code_idx_map.txt, or --candidates gold-only to rank against the "
                        "queries' own gold codes only (not comparable to published figures)")
    cb = records_from_codebase(cb_obj) if cb_obj is not None else None
    rset = build_retrieval(queries, cb, str(q_path))
    rset.protocol = protocol
    rset.candidates = (f"the code base {cb_path.name} ({len(rset.codes)} codes)" if cb is not None else
                       f"the {len(rset.codes)} distinct codes of {q_path.name} itself")
    return rset.gold_only() if candidates == "gold-only" else rset


def load_pairs(path: str, split: str = "train") -> list[tuple[str, str]]:
    """(query, code) training pairs from any layout :func:`load_retrieval` reads."""
    if path.startswith("hf:"):
        recs = _hf_records(path, split)
    else:
        p = resolve_data_path(path, "code-search data")
        q = _find_split(p, split) if p.is_dir() else p
        if q is None:
            raise DataError(f"{p} has no {split}.jsonl[.gz]")
        recs = read_records(q)
        if isinstance(recs, dict):
            raise DataError(f"{q} is a mapping, not a list of (query, code) records")
    return [(query_of(r), code_of(r)) for r in recs]


class PairDataset(Dataset):
    """(query, code) string pairs; the collate function tokenises a batch."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[str, str]:
        return self.pairs[i]
