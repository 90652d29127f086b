"""Code-search loaders: our mined set (split by package, permissive licences), CodeSearchNet jsonl,
the CodeXGLUE test + codebase layout, CoSQA's retrieval_idx + code_idx_map, datasets' code_search_net."""

import gzip
import json

import pytest

from multissl.code.data import (
    build_retrieval,
    from_hf_rows,
    load_pairs,
    load_retrieval,
    read_records,
)
from multissl.code.mine import (
    assign_splits,
    deduplicate,
    first_paragraph,
    functions_of,
    is_permissive,
)
from multissl.data import resolve_data_path
from multissl.errors import DataError


def test_shipped_set_is_split_by_package_with_permissive_licences():
    folder = resolve_data_path("codesearch")
    packages, sizes = {}, {}
    for split in ("train", "valid", "test"):
        recs = read_records(folder / f"{split}.jsonl.gz")
        sizes[split] = len(recs)
        packages[split] = {r["package"] for r in recs}
        assert all(is_permissive(r["licence"]) for r in recs)
        assert all(r["docstring"] and r["code"] and r["url"] for r in recs[:200])
        assert not any('"""' in r["code"][:200] and r["docstring"][:30] in r["code"] for r in recs[:200])
    assert not packages["train"] & packages["valid"] and not packages["train"] & packages["test"]
    assert not packages["valid"] & packages["test"]
    assert sizes["train"] > 5 * sizes["test"] > 0 and sizes["valid"] > 0
    licences = json.loads((folder / "licences.json").read_text())
    assert all(licences[p]["permissive"] for s in packages.values() for p in s)


def test_retrieval_of_shipped_split_points_each_query_at_its_code():
    rset = load_retrieval("codesearch", "valid")
    assert len(rset.queries) == len(rset.relevant) and len(rset.codes) >= len(set(rset.relevant))
    assert all(0 <= r < len(rset.codes) for r in rset.relevant)
    pairs = load_pairs("codesearch", "valid")
    assert pairs[0][0] == rset.queries[0] and pairs[0][1] == rset.codes[rset.relevant[0]]


def test_miner_extracts_and_filters(tmp_path):
    src = tmp_path / "mod.py"
    src.write_text('''
def area(width, height):
    """Return the area of a rectangle.

    More details here.
    """
    w = float(width)
    h = float(height)
    return w * h

def short(x):
    """Return x."""
    return x

def __repr__(self):
    """Return the representation of this object."""
    a = 1
    b = 2
    return str(a + b)

def test_something():
    """Check that the thing works as it should."""
    a = 1
    b = 2
    assert a + b
''')
    rows = functions_of(src, 2000)
    assert [r["func_name"] for r in rows] == ["area"]
    assert rows[0]["query"] == "Return the area of a rectangle."
    assert '"""' not in rows[0]["code"] and rows[0]["code"].startswith("def area(width, height):")
    assert first_paragraph("a b\n  c\n\nd") == "a b c"
    assert is_permissive("MIT") and is_permissive("BSD-3-Clause") and not is_permissive("GPL-3.0") \
        and not is_permissive("MPL-2.0 AND MIT")


def test_dedup_and_split_by_package():
    base = "def f(a, b):\n    x = a + b\n    y = x * 2\n    return y - a\n"
    rows = [{"query": "add things", "code": base, "package": "p"},
            {"query": "add things twice", "code": base.replace("    ", "  "), "package": "q"},  # exact dup
            {"query": "add other things", "code": base.replace("return y - a", "return y - a  # c"), "package": "q"},
            {"query": "sort a list", "code": "def g(xs):\n    ys = sorted(xs)\n    zs = list(ys)\n    return zs\n",
             "package": "r"}]
    kept = deduplicate(rows)
    assert [r["query"] for r in kept] == ["add things", "sort a list"]
    split = assign_splits({f"p{i}": 10 for i in range(40)}, (0.8, 0.1, 0.1), seed=0)
    counts = {s: sum(v == s for v in split.values()) for s in ("train", "valid", "test")}
    assert counts["test"] == 4 and counts["valid"] == 4 and counts["train"] == 32


def _write_jsonl(path, rows, gz=False):
    opener = gzip.open if gz else open
    with opener(path, "wt") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


def test_codesearchnet_jsonl_and_codexglue_codebase(tmp_path):
    rows = [{"url": f"u{i}", "code": f"def f{i}(): '''doc'''\n  pass", "code_tokens": ["def", f"f{i}", "(", ")"],
             "docstring": f"doc {i}\n\nmore", "docstring_tokens": ["doc", str(i)]} for i in range(5)]
    _write_jsonl(tmp_path / "test.jsonl", rows)
    rset = load_retrieval(str(tmp_path / "test.jsonl"))
    assert rset.queries[2] == "doc 2" and rset.codes[rset.relevant[2]] == "def f2 ( )"
    # CodeXGLUE / GraphCodeBERT: queries in test.jsonl, a larger codebase.jsonl matched by url
    folder = tmp_path / "csn"
    folder.mkdir()
    _write_jsonl(folder / "test.jsonl", rows[:2])
    _write_jsonl(folder / "codebase.jsonl", list(reversed(rows)))
    rset = load_retrieval(str(folder), "test")
    assert len(rset.codes) == 5 and rset.relevant == [4, 3]
    # AdvTest-style idx keys and function_tokens
    adv = [{"idx": i, "function_tokens": ["def", f"g{i}"], "docstring_tokens": ["q", str(i)]} for i in range(3)]
    _write_jsonl(tmp_path / "adv.jsonl", adv)
    rs = load_retrieval(str(tmp_path / "adv.jsonl"), codebase=str(tmp_path / "adv.jsonl"))
    assert rs.relevant == [0, 1, 2] and rs.codes[1] == "def g1"


def test_cosqa_layout_and_hf_rows(tmp_path):
    (tmp_path / "cosqa-retrieval-test-500.json").write_text(json.dumps(
        [{"doc": "python sort dict by value", "retrieval_idx": 7}, {"doc": "read a file", "retrieval_idx": 3}]))
    (tmp_path / "code_idx_map.txt").write_text(json.dumps({"def a(): pass": 3, "def b(): pass": 7, "def c(): pass": 9}))
    rset = load_retrieval(str(tmp_path), "test")
    assert rset.codes[rset.relevant[0]] == "def b(): pass" and rset.codes[rset.relevant[1]] == "def a(): pass"
    hf = [{"func_code_url": "x", "func_code_string": "def h(): return 1", "func_code_tokens": ["def", "h"],
           "func_documentation_tokens": ["get", "one"], "func_documentation_string": "Get one."}]
    rs = build_retrieval(from_hf_rows(hf), None)
    assert rs.queries == ["get one"] and rs.codes == ["def h"]
    with pytest.raises(DataError):
        build_retrieval([{"url": "zz", "docstring": "q", "code": "c"}], [{"url": "other", "code": "c"}])
