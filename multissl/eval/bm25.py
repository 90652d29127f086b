"""Okapi BM25 (Robertson & Zaragoza 2009) over pre-tokenised documents, as sparse matrix products:
the lexical floor that a learned retriever must clear on the same ranking.

Scores follow Lucene's BM25 (k1 = 1.2, b = 0.75, idf = ln(1 + (N - df + 0.5) / (df + 0.5)), never
negative); a query term counts once per occurrence, as in ``rank_bm25.BM25Okapi``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


class BM25:
    """An index of ``docs`` (lists of tokens); ``scores(queries)`` gives (Q, N) BM25 scores."""

    def __init__(self, docs: Sequence[Sequence[str]], k1: float = 1.2, b: float = 0.75) -> None:
        from scipy import sparse

        self.vocab: dict[str, int] = {}
        rows, cols = [], []
        for i, doc in enumerate(docs):
            for tok in doc:
                rows.append(i)
                cols.append(self.vocab.setdefault(tok, len(self.vocab)))
        n, v = len(docs), max(1, len(self.vocab))
        tf = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, v))  # duplicates summed
        tf.sum_duplicates()
        dl = np.asarray(tf.sum(1)).ravel()
        avgdl = float(dl.mean()) if n and dl.mean() > 0 else 1.0
        df = np.bincount(tf.indices, minlength=v)
        idf = np.log1p((n - df + 0.5) / (df + 0.5))
        norm = k1 * (1 - b + b * dl / avgdl)  # (N,)
        w = tf.copy().astype(np.float64)
        row_of = np.repeat(np.arange(n), np.diff(w.indptr))
        w.data = w.data * (k1 + 1) / (w.data + norm[row_of]) * idf[w.indices]
        self.weights_t = w.T.tocsr()  # (V, N)
        self.n_docs = n

    def query_matrix(self, queries: Sequence[Sequence[str]]):
        from scipy import sparse

        rows, cols = [], []
        for i, q in enumerate(queries):
            for tok in q:
                j = self.vocab.get(tok)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), self.weights_t.shape[0]))

    def scores(self, queries: Sequence[Sequence[str]]) -> torch.Tensor:
        """(Q, N) float32 BM25 scores of every document for every query."""
        return torch.from_numpy((self.query_matrix(queries) @ self.weights_t).toarray().astype(np.float32))
