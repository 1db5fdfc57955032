"""Question neighbours: TF-IDF cosine similarity computed once per dataset, kept sparse, as a top-k table.

Few-shot steering and the similar-questions baseline both need "the k questions most similar to
this one". The dense way (an n x vocabulary TF-IDF matrix and an n x n cosine matrix) costs
O(n * vocabulary + n^2) memory: 13 GB on the 12.5k real ATP questions. Here:

- `tfidf_vectors`: scikit-learn's `TfidfVectorizer`, configured to give the same vectors as the
  dense definition (terms: lowercased `[a-z0-9']+` words plus word bigrams, its token_pattern and
  ngram_range;
  sublinear tf 1 + log(tf); smoothed idf log((1 + n) / (1 + df)) + 1; rows l2-normalised), as a
  sparse CSR matrix. Text = question + " " + the option labels joined by spaces (option labels
  are part of the text: two questions with the same answer scale are better neighbours than two
  that merely share a topic word).
- `build_neighbours`: the top-k neighbours of every question, computed in blocks of rows
  (sparse X[block] @ X.T, densified block by block: memory O(block * n), never O(n^2)).
  Order: descending similarity, ties by ascending position in qkey order (= qkey order); a
  question is never its own neighbour. Similarities that differ by floating-point noise only
  (below ~1e-12, see `rank_key`) are ties. The table has one row per (qkey, rank).
- `Neighbours.most_similar`: the same answer as a brute-force ranking over all questions, with
  optional filters (same option count; an allowed pool, e.g. questions that have the steered
  group's distribution).

Why filtering a stored top-k is exact: the stored list of a question is a *prefix* of its full
ranking. Filtering a prefix of a ranking gives a prefix of the filtered ranking, so as long as
at least k neighbours pass the filter within the stored top-k, the first k that pass are
exactly the brute-force answer. When fewer pass (and the stored list is not already the whole
ranking), `most_similar` computes that question's exact similarity row on demand (one sparse
row times X.T: O(n)) and ranks it in full, so the answer *always* equals brute force; a larger
`k` at build time only makes that fallback rarer. The fallback row and the stored rows come
from the same sparse product, so their similarities are bitwise identical.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm import tqdm

NEIGHBOUR_COLUMNS = ["qkey", "rank", "neighbour", "similarity", "n_options_equal"]
DEFAULT_K = 50
DEFAULT_BLOCK = 256
TIE_SCALE = float(2**40)  # similarities equal on this grid (~1e-12) are ties: see rank_key

# The TF-IDF terms: lowercased `[a-z0-9']+` words and the word bigrams (joined by a space).
TOKEN_PATTERN = r"[a-z0-9']+"
NGRAM_RANGE = (1, 2)


def question_text(question: str, options: Iterable) -> str:
    """What a question is compared on: its wording and its option labels."""
    return f"{question} {' '.join(str(o) for o in options)}"


def _ordered(questions: pd.DataFrame) -> pd.DataFrame:
    """Rows in qkey order (stable); qkeys must be unique (a neighbour is named by its qkey)."""
    duplicated = questions["qkey"][questions["qkey"].duplicated()]
    if len(duplicated):
        raise ValueError(f"questions: qkey {duplicated.iloc[0]!r} appears more than once")
    return questions.sort_values("qkey", kind="stable").reset_index(drop=True)


def tfidf_vectors(texts: Sequence[str]) -> sp.csr_matrix:
    """Row-normalised TF-IDF vectors of `texts` (sparse CSR, float64, indices sorted).

    A text without any term is a zero row (similarity 0 with everything), as in the dense
    definition; so is every row when no text has a term.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not len(texts):
        return sp.csr_matrix((0, 1), dtype=np.float64)
    vectorizer = TfidfVectorizer(token_pattern=TOKEN_PATTERN, ngram_range=NGRAM_RANGE, lowercase=True,
                                 sublinear_tf=True, smooth_idf=True, use_idf=True, norm="l2", dtype=np.float64)
    try:
        matrix = vectorizer.fit_transform(list(texts))
    except ValueError:  # "empty vocabulary": no text has a single term
        return sp.csr_matrix((len(texts), 1), dtype=np.float64)
    matrix = sp.csr_matrix(matrix, dtype=np.float64)
    matrix.sort_indices()
    return matrix


def _rows_similarity(vectors: sp.csr_matrix, vectors_t: sp.csr_matrix, rows: slice | np.ndarray) -> np.ndarray:
    """Cosine similarities of `rows` with every question, dense (len(rows) x n).

    The one place similarities are computed (table and on-demand fallback alike): the sparse
    product sums each entry over the row's terms in index order, whichever block the row is in,
    so a row's values never depend on how rows were grouped.
    """
    return np.asarray((vectors[rows] @ vectors_t).todense(), dtype=np.float64)


def rank_key(sims: np.ndarray) -> np.ndarray:
    """Similarities on a 2**-40 grid (~1e-12), the values that are ranked (ties: by position).

    Two questions that are mathematically equally similar to a third (e.g. "do URBAN areas
    get..." and "do SUBURBAN areas get..." against a question sharing neither word) get float
    similarities 1 ulp apart, and *which* is larger depends on the summation order (sparse
    product vs BLAS). Ranking the exact floats would make the tie order an artefact of the
    arithmetic; on this grid such ties are ties, broken by qkey order, whatever computes them.
    Scaling by a power of two is exact, so the key is a deterministic function of the float.
    """
    return np.rint(np.asarray(sims, dtype=np.float64) * TIE_SCALE)


def _rank_row(sims: np.ndarray, candidates: np.ndarray, k: int) -> np.ndarray:
    """The first k of `candidates` (ascending positions) by descending similarity, ties by position."""
    if k <= 0 or not candidates.size:
        return candidates[:0]
    values = rank_key(sims[candidates])
    if candidates.size > k:
        # the k-th largest value; everything above it is in, ties at it are taken by position
        threshold = np.partition(values, candidates.size - k)[candidates.size - k]
        keep = values >= threshold
        candidates, values = candidates[keep], values[keep]
    order = np.argsort(-values, kind="stable")  # stable: equal similarities stay in position order
    return candidates[order[:k]]


def build_neighbours(questions: pd.DataFrame, k: int = DEFAULT_K, block: int = DEFAULT_BLOCK,
                     progress: bool | None = None) -> pd.DataFrame:
    """The top-k neighbours of every question: columns `NEIGHBOUR_COLUMNS`, rows by (qkey, rank).

    `questions` needs `qkey`, `question`, `options`. Each question gets min(k, n - 1) rows:
    rank 0 is its most similar other question. `n_options_equal` says whether the neighbour has
    as many options (the similar-questions baseline averages those position by position).
    `progress`: a tqdm bar over the row blocks; None shows it only on a terminal.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    ordered = _ordered(questions)
    qkeys = ordered["qkey"].astype(str).tolist()
    n = len(qkeys)
    n_options = ordered["options"].map(len).to_numpy()
    vectors = tfidf_vectors([question_text(q, o) for q, o in zip(ordered["question"], ordered["options"])])
    vectors_t = vectors.T.tocsr()
    width = min(k, max(n - 1, 0))
    owner = np.empty(n * width, dtype=np.int64)
    neighbour = np.empty(n * width, dtype=np.int64)
    similarity = np.empty(n * width, dtype=np.float64)
    everyone = np.arange(n)
    if progress is None:
        progress = sys.stderr.isatty()
    starts = range(0, n if width else 0, block)
    for start in tqdm(starts, total=len(starts), desc="neighbours", unit="block", disable=not progress):
        stop = min(start + block, n)
        sims = _rows_similarity(vectors, vectors_t, slice(start, stop))
        for r, i in enumerate(range(start, stop)):
            candidates = np.delete(everyone, i)
            top = _rank_row(sims[r], candidates, width)
            at = slice(i * width, (i + 1) * width)
            owner[at], neighbour[at], similarity[at] = i, top, sims[r, top]
    names = np.array(qkeys, dtype=object)
    return pd.DataFrame({
        "qkey": names[owner],
        "rank": np.tile(np.arange(width, dtype=np.int64), n),
        "neighbour": names[neighbour],
        "similarity": similarity,
        "n_options_equal": n_options[neighbour] == n_options[owner],
    }, columns=NEIGHBOUR_COLUMNS)


class Neighbours:
    """`most_similar` over a neighbours table (see `build_neighbours`), exact with any filter.

    `questions` are the dataset's questions the table was built from; they give option counts
    and, only when a filter leaves fewer than k stored neighbours, the TF-IDF vectors for the
    exact fallback row (built lazily, once).
    """

    def __init__(self, table: pd.DataFrame, questions: pd.DataFrame) -> None:
        missing = [c for c in NEIGHBOUR_COLUMNS if c not in table.columns]
        if missing:
            raise ValueError(f"neighbours table lacks columns {missing}")
        self._questions = _ordered(questions)
        self.qkeys: list[str] = self._questions["qkey"].astype(str).tolist()
        self.n_options: np.ndarray = self._questions["options"].map(len).to_numpy()
        self._index = {q: i for i, q in enumerate(self.qkeys)}
        names = set(self._index)
        known = (table["qkey"].isin(names) & table["neighbour"].isin(names)).to_numpy()
        if not known.all():
            bad = table.loc[~known].iloc[0]
            raise ValueError(f"neighbours table names {bad['qkey']!r} -> {bad['neighbour']!r}, "
                             "not both among the questions (built from another dataset?)")
        ordered = table.assign(_q=table["qkey"].map(self._index)).sort_values(["_q", "rank"], kind="stable")
        owners = ordered["_q"].to_numpy(dtype=np.int64)
        self._neighbour = ordered["neighbour"].map(self._index).to_numpy(dtype=np.int64)
        self._similarity = ordered["similarity"].to_numpy(dtype=np.float64)
        bounds = np.searchsorted(owners, np.arange(len(self.qkeys) + 1))
        self._start, self._stop = bounds[:-1], bounds[1:]
        self._vectors: sp.csr_matrix | None = None
        self._vectors_t: sp.csr_matrix | None = None
        self._masks: dict[int, tuple[set[str], np.ndarray]] = {}
        self._ranked: tuple[int, bool, np.ndarray] | None = None
        self._prefix: tuple[int, bool, np.ndarray] | None = None
        self.fallbacks = 0  # how many answers needed the exact row (a larger build k makes this rarer)

    @classmethod
    def from_questions(cls, questions: pd.DataFrame, k: int = DEFAULT_K, progress: bool | None = None) -> Neighbours:
        return cls(build_neighbours(questions, k=k, progress=progress), questions)

    def stored(self, qkey: str) -> tuple[list[str], np.ndarray]:
        """The stored neighbours of `qkey` and their similarities, rank order."""
        i = self._index[qkey]
        at = slice(self._start[i], self._stop[i])
        return [self.qkeys[j] for j in self._neighbour[at]], self._similarity[at].copy()

    def similarity_row(self, qkey: str) -> np.ndarray:
        """Exact cosine similarity of `qkey` with every question (qkey order; O(n))."""
        if self._vectors is None:
            q = self._questions
            self._vectors = tfidf_vectors([question_text(t, o) for t, o in zip(q["question"], q["options"])])
            self._vectors_t = self._vectors.T.tocsr()
        return _rows_similarity(self._vectors, self._vectors_t, np.array([self._index[qkey]]))[0]

    def _allowed(self, allowed: set[str]) -> np.ndarray:
        """`allowed` as a boolean array over positions, made once per set object.

        Callers ask about the same few pools (one per steered group) for every question, so
        the O(n) conversion is paid per pool, not per question; the set is kept with its mask
        so its id cannot be reused by another set while cached.
        """
        cached = self._masks.get(id(allowed))
        if cached is None or cached[0] is not allowed:
            mask = np.fromiter((q in allowed for q in self.qkeys), dtype=bool, count=len(self.qkeys))
            cached = self._masks[id(allowed)] = (allowed, mask)
        return cached[1]

    def _same_scale(self, positions: np.ndarray, i: int) -> np.ndarray:
        """`positions` whose question has as many options as question i."""
        return positions[self.n_options[positions] == self.n_options[i]]

    def _full_ranking(self, i: int, same_option_count: bool) -> np.ndarray:
        """Every other question ranked for question i (kept for the last question asked: callers go
        question by question, group by group, so the groups of one question share it)."""
        if self._ranked is None or self._ranked[:2] != (i, same_option_count):
            sims = self.similarity_row(self.qkeys[i])
            candidates = np.delete(np.arange(len(self.qkeys)), i)
            if same_option_count:
                candidates = self._same_scale(candidates, i)
            self._ranked = (i, same_option_count, _rank_row(sims, candidates, len(candidates)))
        return self._ranked[2]

    def _stored_positions(self, i: int, same_option_count: bool) -> np.ndarray:
        """Question i's stored neighbours (positions), with the option-count filter applied once per
        question (callers ask about one question for many groups in a row)."""
        if self._prefix is None or self._prefix[:2] != (i, same_option_count):
            positions = self._neighbour[self._start[i]:self._stop[i]]
            if same_option_count:
                positions = self._same_scale(positions, i)
            self._prefix = (i, same_option_count, positions)
        return self._prefix[2]

    def most_similar(self, qkey: str, k: int, same_option_count: bool = False,
                     allowed: set[str] | None = None) -> list[str]:
        """Up to k other qkeys, most similar first (ties: qkey order); the brute-force answer.

        `same_option_count` keeps only questions whose answer scale has as many options;
        `allowed` restricts the pool (e.g. questions that have the steered group's distribution).
        """
        i = self._index[qkey]
        if k <= 0:
            return []
        positions = self._stored_positions(i, same_option_count)
        passing = positions if allowed is None else positions[self._allowed(allowed)[positions]]
        complete = self._stop[i] - self._start[i] >= len(self.qkeys) - 1  # the stored list is the whole ranking
        if len(passing) >= k or complete:
            return [self.qkeys[j] for j in passing[:k]]
        self.fallbacks += 1
        ranked = self._full_ranking(i, same_option_count)
        if allowed is not None:
            ranked = ranked[self._allowed(allowed)[ranked]]
        return [self.qkeys[j] for j in ranked[:k]]


def load_neighbours(path: Path | None, questions: pd.DataFrame) -> Neighbours:
    """The `neighbours` stage's table for `questions`; built here (same answers, slower) when there is none."""
    if path is not None and Path(path).exists():
        return Neighbours(pd.read_parquet(path), questions)
    return Neighbours.from_questions(questions, progress=False)
