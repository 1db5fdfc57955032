"""The k most similar questions, shared by few-shot steering and the similar-questions baseline.

Deterministic and offline: TF-IDF (sublinear tf, smoothed idf, word unigrams + bigrams) of the
question wording plus its option labels, cosine similarity in numpy. Option labels are part of
the text because two questions with the same answer scale are better few-shot neighbours than
two that merely share a topic word. Ties are broken by qkey so the neighbours never depend on
row order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

_WORD = re.compile(r"[a-z0-9']+")


def _terms(text: str) -> list[str]:
    words = _WORD.findall(text.lower())
    return words + [f"{a} {b}" for a, b in zip(words, words[1:])]


def question_text(question: str, options: Sequence[str]) -> str:
    return f"{question} {' '.join(str(o) for o in options)}"


def tfidf_matrix(texts: Sequence[str]) -> np.ndarray:
    """Row-normalised TF-IDF vectors (dense: a few thousand questions fit easily)."""
    docs = [_terms(t) for t in texts]
    vocab = {term: i for i, term in enumerate(sorted({t for d in docs for t in d}))}
    counts = np.zeros((len(docs), max(len(vocab), 1)), dtype=np.float64)
    for row, doc in enumerate(docs):
        for term in doc:
            counts[row, vocab[term]] += 1.0
    tf = np.where(counts > 0, 1.0 + np.log(np.maximum(counts, 1.0)), 0.0)
    df = (counts > 0).sum(axis=0)
    idf = np.log((1.0 + len(docs)) / (1.0 + df)) + 1.0
    vectors = tf * idf
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


class SimilarQuestions:
    """Nearest questions by TF-IDF cosine; a question is never its own neighbour."""

    def __init__(self, questions: pd.DataFrame) -> None:
        ordered = questions.sort_values("qkey", kind="stable").reset_index(drop=True)
        self.qkeys: list[str] = ordered["qkey"].tolist()
        self.n_options: np.ndarray = ordered["options"].map(len).to_numpy()
        self._index = {q: i for i, q in enumerate(self.qkeys)}
        texts = [question_text(q, o) for q, o in zip(ordered["question"], ordered["options"])]
        vectors = tfidf_matrix(texts)
        self.similarity: np.ndarray = vectors @ vectors.T

    def most_similar(self, qkey: str, k: int, same_option_count: bool = False,
                     allowed: set[str] | None = None) -> list[str]:
        """Up to k other qkeys, most similar first (ties: qkey order).

        `same_option_count` keeps only questions whose answer scale has as many options, so
        their distributions can be averaged position by position; `allowed` restricts the pool
        (e.g. questions that have the steered group's distribution).
        """
        i = self._index[qkey]
        sims = self.similarity[i]
        keep = np.ones(len(self.qkeys), dtype=bool)
        keep[i] = False
        if same_option_count:
            keep &= self.n_options == self.n_options[i]
        if allowed is not None:
            keep &= np.array([q in allowed for q in self.qkeys])
        candidates = np.flatnonzero(keep)
        # lexsort: last key is primary -> descending similarity, then ascending position (= qkey order)
        order = candidates[np.lexsort((candidates, -sims[candidates]))]
        return [self.qkeys[j] for j in order[:k]]
