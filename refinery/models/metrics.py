"""Classifier metrics without scikit-learn: ROC-AUC (rank statistic), precision, recall; log-odds."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np


def logit(p: float, eps: float) -> float:
    """log(p / (1 - p)) with p clipped to [eps, 1 - eps] (classifiers answer 0.0 and 1.00001)."""
    p = min(1.0 - eps, max(eps, p))
    return math.log(p / (1.0 - p))


def roc_auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Probability that a random positive outscores a random negative (ties count half)."""
    y = np.asarray(labels, dtype=np.int64)
    s = np.asarray(scores, dtype=np.float64)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs both positive and negative rows")
    order = np.argsort(s, kind="mergesort")
    ranks = np.empty(len(s), dtype=np.float64)
    sorted_s = s[order]
    # average ranks over ties
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and sorted_s[j + 1] == sorted_s[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[y == 1].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def precision_recall(labels: Sequence[int], scores: Sequence[float], threshold: float) -> tuple[float, float]:
    y = np.asarray(labels, dtype=bool)
    pred = np.asarray(scores, dtype=np.float64) >= threshold
    tp = int((pred & y).sum())
    precision = tp / int(pred.sum()) if pred.any() else 0.0
    recall = tp / int(y.sum()) if y.any() else 0.0
    return precision, recall


def classification_report(labels: Sequence[int], scores: Sequence[float], threshold: float = 0.5) -> dict:
    p, r = precision_recall(labels, scores, threshold)
    return {
        "rows": len(labels),
        "positives": int(np.sum(labels)),
        "threshold": threshold,
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
        "roc_auc": round(roc_auc(labels, scores), 4),
    }


def percentiles(values: Sequence[float], digits: int) -> list[float]:
    """Percentiles 0..100 by linear interpolation (cc_net's cutoff.csv rows), rounded to `digits`."""
    s = sorted(values)
    out = []
    for q in range(101):
        pos = (len(s) - 1) * q / 100
        lo = int(pos)
        hi = min(lo + 1, len(s) - 1)
        out.append(round(s[lo] + (s[hi] - s[lo]) * (pos - lo), digits))
    return out
