"""A tiny random BERT with the MiniLM tokenizer, saved once per session: fast real-sentence training runs."""

import pytest


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    import torch
    from transformers import BertConfig, BertModel

    from multissl.encoders.hf import HFEncoder, load_tokenizer

    torch.manual_seed(0)
    tok = load_tokenizer("minilm")
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, pad_token_id=tok.pad_token_id)
    path = tmp_path_factory.mktemp("tiny_bert")
    HFEncoder("", pooling="mean", max_length=64, model=BertModel(config), tokenizer=tok).save_pretrained(path)
    return str(path)


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    """One intra-op thread (see ``one_torch_thread`` in tests/conftest.py)."""
    yield


# SentEval STS12-16 subsets rebuilt from the shipped STS Benchmark rows (STS-B is drawn from them and keeps
# each pair's source file and year): year folder -> {SentEval subset name: (STS-B file column, year column)}.
SENTEVAL_FROM_STSB = {
    "STS12-en-test": {"MSRpar": ("MSRpar", "2012test"), "MSRvid": ("MSRvid", "2012test")},
    "STS13-en-test": {"headlines": ("headlines", "2013")},
    "STS14-en-test": {"headlines": ("headlines", "2014"), "images": ("images", "2014")},
    "STS15-en-test": {"headlines": ("headlines", "2015"), "images": ("images", "2015")},
    "STS16-en-test": {"headlines": ("headlines", "2016"), "answer-answer": ("answer-answer", "2016")},
}
PER_SUBSET = 40


def stsb_rows() -> list[list[str]]:
    """Rows (genre, file, year, id, score, s1, s2) of the shipped STS-B test and dev files."""
    import gzip

    from multissl.data import resolve_data_path

    rows = []
    for name in ("stsb/sts-test.csv", "stsb/sts-dev.csv.gz"):
        path = resolve_data_path(name)
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as fh:
            rows += [line.rstrip("\n").split("\t")[:7] for line in fh if line.strip()]
    return rows


@pytest.fixture(scope="session")
def senteval_root(tmp_path_factory):
    """A SentEval ``data/downstream`` folder in the published layout, built from shipped STS-B rows:
    ``STS/STS1x-en-test/STS.{input,gs}.<subset>.txt.gz`` (gzipped, as mirrors ship them; one unscored
    pair per subset, empty gold line), ``STS/STSBenchmark/sts-test.csv`` and ``SICK/SICK.txt`` (the full
    release's columns with ``SemEval_set``; relatedness = STS-B score mapped onto SICK's 1-5 scale)."""
    import gzip

    rows = stsb_rows()
    root = tmp_path_factory.mktemp("senteval") / "downstream"
    for year, subsets in SENTEVAL_FROM_STSB.items():
        folder = root / "STS" / year
        folder.mkdir(parents=True)
        for name, (file, yr) in subsets.items():
            picked = [r for r in rows if r[1] == file and r[2] == yr][:PER_SUBSET]
            assert len(picked) >= 20, (file, yr)
            with gzip.open(folder / f"STS.input.{name}.txt.gz", "wt", encoding="utf-8") as fh:
                fh.writelines(f"{r[5]}\t{r[6]}\n" for r in picked)
            with gzip.open(folder / f"STS.gs.{name}.txt.gz", "wt", encoding="utf-8") as fh:
                fh.writelines(("" if i == 3 else r[4]) + "\n" for i, r in enumerate(picked))
    stsb = root / "STS" / "STSBenchmark"
    stsb.mkdir(parents=True)
    test = [r for r in rows if r[2] == "2017"][:60]
    (stsb / "sts-test.csv").write_text("".join("\t".join(r) + "\n" for r in test), encoding="utf-8")
    sick = root / "SICK"
    sick.mkdir()
    header = ["pair_ID", "sentence_A", "sentence_B", "entailment_label", "relatedness_score", "entailment_AB",
              "entailment_BA", "sentence_A_original", "sentence_B_original", "sentence_A_dataset",
              "sentence_B_dataset", "SemEval_set"]
    pool = [r for r in rows if r[1] == "MSRvid"][:100]
    sets = ["TRAIN"] * 45 + ["TRIAL"] * 5 + ["TEST"] * 50
    lines = ["\t".join(header)]
    for i, (r, s) in enumerate(zip(pool, sets, strict=True)):
        score = 1 + 0.8 * float(r[4])
        lines.append("\t".join([str(i + 1), r[5], r[6], "NEUTRAL", f"{score:.1f}", "A_neutral_B", "B_neutral_A",
                                r[5], r[6], "FLICKR", "FLICKR", s]))
    (sick / "SICK.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root
