"""Evaluation core used by every modality: metrics, retrieval, probes and embedding diagnostics."""

from multissl.eval.diagnostics import alignment, plot_projection, uniformity
from multissl.eval.frozen import frozen_scores
from multissl.eval.metrics import accuracy, hit_at_k, mrr, ndcg_at_k, pearson, recall_at_k, spearman
from multissl.eval.probes import (knn_accuracy, knn_predict, layer_weighted_probe, linear_probe, logistic_regression,
                                  ridge_fit, ridge_probe)
from multissl.eval.roc import roc_auc
from multissl.eval.retrieval import relevance_of, retrieval_metrics, topk_retrieval

__all__ = [
    "accuracy", "alignment", "frozen_scores", "hit_at_k", "knn_accuracy", "knn_predict", "layer_weighted_probe", "linear_probe", "logistic_regression",
    "mrr", "ndcg_at_k", "pearson", "plot_projection", "recall_at_k", "relevance_of", "retrieval_metrics",
    "ridge_fit", "ridge_probe", "roc_auc", "spearman", "topk_retrieval", "uniformity",
]
