"""Real search queries for code-search training (CoNaLa's Stack Overflow titles, data/code-conala), the
recipe option that adds them to the mined pairs (data.extra_train, held-out check included), and the
docstring-stripped CoSQA check (functions without their docstrings)."""

import gzip
import json
import zipfile
from pathlib import Path

import pytest

from multissl.code.conala import build, question_rows
from multissl.code.data import load_pairs, load_retrieval
from multissl.code.heldout import cosqa_subbase, load_heldout, remove_docstrings

TRAIN = [
    {"question_id": 1, "intent": "Url decode UTF-8 in Python", "rewritten_intent": "decode url `url`",
     "snippet": "urllib.parse.unquote(url)"},
    {"question_id": 1, "intent": "Url decode UTF-8 in Python", "rewritten_intent": "decode `url` as utf8",
     "snippet": "urllib.parse.unquote(url, 'utf8')"},
    {"question_id": 1, "intent": "Url decode UTF-8 in Python", "rewritten_intent": "again", "snippet": "urllib.parse.unquote(url)"},
    {"question_id": 2, "intent": None, "rewritten_intent": "sort dict `d` by value", "snippet": "sorted(d, key=d.get)"},
    {"question_id": 3, "intent": "Trim   whitespace", "rewritten_intent": "x", "snippet": "s.strip()"},
    {"question_id": 4, "intent": "no code", "rewritten_intent": "x", "snippet": "  "},
] + [{"question_id": 10 + i, "intent": f"question {i}", "rewritten_intent": "", "snippet": f"f({i})"} for i in range(20)]
TEST = [{"question_id": 3, "intent": "Trim whitespace", "rewritten_intent": "x", "snippet": "s.strip()"},
        {"question_id": 99, "intent": "Find next sibling element in Selenium?", "rewritten_intent": "", "snippet": "d.find()"}]


@pytest.fixture()
def conala_zip(tmp_path):
    """CoNaLa's release zip layout (conala_annotations.zip)."""
    path = tmp_path / "conala_annotations.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("data/examples.annotated.train.json", json.dumps(TRAIN))
        zf.writestr("data/examples.annotated.test.json", json.dumps(TEST))
    return path


def test_one_row_per_question_with_its_title_and_distinct_snippets():
    rows = {r["question_id"]: r for r in question_rows(TRAIN)}
    assert rows[1]["query"] == "Url decode UTF-8 in Python"  # the asker's title, not the annotator's rewrite
    assert rows[1]["code"] == "urllib.parse.unquote(url)\nurllib.parse.unquote(url, 'utf8')"  # duplicates once
    assert rows[2]["query"] == "sort dict `d` by value"  # no title: the rewrite stands in
    assert rows[3]["query"] == "Trim whitespace" and 4 not in rows  # whitespace collapsed; no snippet, no row


def test_builder_keeps_test_questions_out_of_train_and_valid(conala_zip, tmp_path):
    counts = build(conala_zip, tmp_path / "out", valid_share=0.25, seed=0)
    assert counts == {"train": 16, "valid": 6, "test": 2}  # 23 questions with code; question 3 is a test one
    ids = {}
    for split in ("train", "valid", "test"):
        with gzip.open(tmp_path / "out" / f"{split}.jsonl.gz", "rt") as fh:
            ids[split] = {json.loads(line)["question_id"] for line in fh}
    assert 3 in ids["test"] and 3 not in ids["train"] | ids["valid"] and not ids["train"] & ids["valid"]
    pairs = load_pairs(str(tmp_path / "out"), "train") + load_pairs(str(tmp_path / "out"), "valid")
    assert ("Url decode UTF-8 in Python", "urllib.parse.unquote(url)\nurllib.parse.unquote(url, 'utf8')") in pairs
    assert build(conala_zip, tmp_path / "again", valid_share=0.25, seed=0) == counts
    assert (tmp_path / "again" / "valid.jsonl.gz").read_bytes() == (tmp_path / "out" / "valid.jsonl.gz").read_bytes()


def test_shipped_conala_set_shares_nothing_with_the_heldout_check():
    h = load_heldout("code-cosqa")
    from multissl.code.heldout import find_leakage

    for split in ("train", "valid", "test"):
        pairs = load_pairs("code-conala", split)
        leak = find_leakage(pairs, h)
        assert pairs and not leak.query_hits and not leak.code_hits, split
    valid = load_retrieval("code-conala", "valid")
    assert len(valid) == len(valid.codes)  # one snippet block per question


def test_remove_docstrings_keeps_everything_else():
    code = ('def load(path, mode="r"):\n    """Open a file.\n\n    Returns its text.\n    """\n'
            "    # read it all\n    with open(path, mode) as fh:\n        return fh.read()\n")
    out = remove_docstrings(code)
    assert "Open a file" not in out and "Returns its text" not in out
    assert out == 'def load(path, mode="r"):\n    # read it all\n    with open(path, mode) as fh:\n        return fh.read()'
    only = 'class A:\n    """Doc only."""\n'
    assert remove_docstrings(only) == "class A:\n    pass"
    assert remove_docstrings("def f(:\n  broken") == "def f(:\n  broken"  # unparsable: unchanged
    assert remove_docstrings("x = '''not a docstring'''") == "x = '''not a docstring'''"


def test_docstring_stripped_cosqa_folder_has_the_same_queries_and_gold(tmp_path):
    codes = [f'def f{i}(x):\n    """Add {i} to x."""\n    return x + {i}\n' for i in range(10)]
    src = tmp_path / "cosqa"
    src.mkdir()
    (src / "code_idx_map.txt").write_text(json.dumps({c: i for i, c in enumerate(codes)}))
    (src / "cosqa-retrieval-dev-2.json").write_text(json.dumps(
        [{"idx": "d0", "doc": "python add three", "retrieval_idx": 3}, {"idx": "d1", "doc": "add eight", "retrieval_idx": 8}]))
    plain = load_retrieval(str(cosqa_subbase(str(src), tmp_path / "full", None)), "dev")
    stripped = load_retrieval(str(cosqa_subbase(str(src), tmp_path / "nodoc", None, no_docstrings=True)), "dev")
    assert len(stripped.codes) == 10 and stripped.queries == plain.queries
    gold = [stripped.codes[r] for r in stripped.relevant]
    assert gold == ["def f3(x):\n    return x + 3", "def f8(x):\n    return x + 8"]
    assert all('"""' not in c for c in stripped.codes) and all('"""' in c for c in plain.codes)


def test_extra_training_sets_are_added_and_checked_against_the_heldout_set(tmp_path):
    from multissl.recipes import load_recipe
    from multissl.run import build_parts

    extra = tmp_path / "extra"
    extra.mkdir()
    cosqa_query = load_retrieval("code-cosqa", "dev").queries[0]
    rows = [{"query": "Url decode UTF-8 in Python", "code": "urllib.parse.unquote(url)"},
            {"query": cosqa_query, "code": "leaked()"}]
    (extra / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    overrides = ["data.max_train_pairs=40", "data.max_valid_codebase=20", "data.final_test=false",
                 f"data.extra_train=[{extra}]", "data.heldout_overlap=drop"]
    _, parts = build_parts(load_recipe("code/finetune-minilm", overrides))
    pairs = parts.train_data.pairs
    assert len(pairs) == 41 and pairs[-1] == ("Url decode UTF-8 in Python", "urllib.parse.unquote(url)")
    assert all(q != cosqa_query for q, _ in pairs)  # the held-out query was dropped from the extra set
    _, plain = build_parts(load_recipe("code/finetune-minilm", overrides[:3]))
    assert plain.train_data.pairs == pairs[:40]  # the mined sample does not change


def test_robust_recipe_trains_on_real_searches_and_selects_on_their_validation_split():
    from multissl.recipes import load_recipe
    from multissl.run import build_parts

    recipe = load_recipe("code/finetune-minilm-robust", [])
    assert recipe.config.data.path == "code-conala" and "code-cosqa" in recipe.config.data.heldout
    _, parts = build_parts(recipe)
    pairs = parts.train_data.pairs
    assert len(pairs) == 1229 and ("Posting raw data with Python",
                                   "requests.post(url, data=DATA, headers=HEADERS_DICT, auth=(username, password))") in pairs
    titles = {q for q, _ in load_pairs("code-conala", "valid")}
    assert not titles & {q for q, _ in pairs}


def _rank_file(path, ranks, model="m", split="test"):
    with open(path, "w") as fh:
        fh.writelines(json.dumps({"split": split, "query_index": i, "query": f"q{i}", "gold": i, "ranks": {model: r, "bm25": 9}}) + "\n" for i, r in enumerate(ranks))
    return str(path)


def test_compare_pairs_rank_files_and_summarises_seeds(tmp_path):
    from multissl.code.compare import over_seeds, paired

    n = 60
    base = _rank_file(tmp_path / "base.jsonl", [2] * n)  # RR 0.5 everywhere
    better = [_rank_file(tmp_path / f"a{s}.jsonl", [1] * (n - k) + [2] * k) for s, k in enumerate((0, 10, 20))]
    one = paired(better[0], base, "test", None)
    assert one["a_minus_b"]["value"] == pytest.approx(0.5) and one["a_minus_b"]["excludes_zero"]
    out = over_seeds(better, base, "test", None)
    diffs = [r["a_minus_b"]["value"] for r in out["per_run"]]
    assert diffs == pytest.approx([0.5, 0.5 * 50 / 60, 0.5 * 40 / 60])
    s = out["a_minus_b_over_runs"]
    assert s["mean"] == pytest.approx(sum(diffs) / 3) and s["low"] < s["mean"] < s["high"] and s["positive_runs"] == 3
    other = _rank_file(tmp_path / "other.jsonl", [2] * (n - 1))  # a different query set: not paired
    with pytest.raises(Exception, match="same queries"):
        paired(other, base, "test", None)
    shifted = tmp_path / "shifted.jsonl"  # same queries, gold indices of another code base: not paired
    shifted.write_text(Path(base).read_text().replace('"gold": ', '"gold": 1'))
    with pytest.raises(Exception, match="same gold codes"):
        paired(str(shifted), base, "test", None)
