"""The sparse top-k neighbours table and `Neighbours.most_similar` equal a brute-force dense ranking.

The brute force is written here, independently of the module: dense TF-IDF (sublinear tf,
smoothed idf, l2 rows; words + bigrams), the full n x n cosine matrix (BLAS), and a sort by
descending similarity then ascending qkey position, the definition the few-shot steering and the
similar-questions baseline have always used. Similarities are compared on a 2**-40 grid: two
questions mathematically equally similar to a third come out 1 ulp apart in one summation order
and equal in another (real data has such pairs: "do URBAN / SUBURBAN areas get..."), so ties
are defined below float noise, in the brute force as in the module.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from opinionbench.neighbours import (
    NEIGHBOUR_COLUMNS,
    Neighbours,
    build_neighbours,
    tfidf_vectors,
)

TOL = 1e-12
WORD = re.compile(r"[a-z0-9']+")


# -- the brute force ----------------------------------------------------------------------------
def dense_tfidf(texts: list[str]) -> np.ndarray:
    docs = []
    for text in texts:
        words = WORD.findall(text.lower())
        docs.append(words + [f"{a} {b}" for a, b in zip(words, words[1:])])
    vocab = {t: i for i, t in enumerate(sorted({t for d in docs for t in d}))}
    counts = np.zeros((len(docs), max(len(vocab), 1)))
    for row, doc in enumerate(docs):
        for term in doc:
            counts[row, vocab[term]] += 1.0
    tf = np.where(counts > 0, 1.0 + np.log(np.maximum(counts, 1.0)), 0.0)
    df = (counts > 0).sum(axis=0)
    vectors = tf * (np.log((1.0 + len(docs)) / (1.0 + df)) + 1.0)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1.0, norms)


class BruteForce:
    def __init__(self, questions: pd.DataFrame) -> None:
        ordered = questions.sort_values("qkey", kind="stable").reset_index(drop=True)
        self.qkeys = ordered["qkey"].tolist()
        self.index = {q: i for i, q in enumerate(self.qkeys)}
        self.n_options = ordered["options"].map(len).to_numpy()
        texts = [f"{q} {' '.join(str(o) for o in opts)}" for q, opts in zip(ordered["question"], ordered["options"])]
        self.vectors = dense_tfidf(texts)
        self.sims = self.vectors @ self.vectors.T

    def ranking(self, qkey: str, same_option_count: bool = False, allowed: set[str] | None = None) -> np.ndarray:
        i = self.index[qkey]
        keep = np.ones(len(self.qkeys), dtype=bool)
        keep[i] = False
        if same_option_count:
            keep &= self.n_options == self.n_options[i]
        if allowed is not None:
            keep &= np.array([q in allowed for q in self.qkeys])
        candidates = np.flatnonzero(keep)
        # ties: equal on a 2**-40 grid (the float noise of the summation order is no difference)
        key = np.rint(self.sims[i, candidates] * 2.0**40)
        return candidates[np.lexsort((candidates, -key))]

    def most_similar(self, qkey: str, k: int, **filters) -> list[str]:
        return [self.qkeys[j] for j in self.ranking(qkey, **filters)[:k]]


# -- data -----------------------------------------------------------------------------------------
def synthetic_questions() -> pd.DataFrame:
    """~60 questions with exact duplicates, shared answer scales, zero-similarity ties, an empty text."""
    rng = np.random.default_rng(7)
    topics = ["economy", "climate change", "gun policy", "immigration", "health care", "the news media"]
    scales = [["Yes", "No"], ["Favor", "Oppose"], ["A great deal", "Some", "Not much", "Not at all"],
              ["Very", "Somewhat", "Not too", "Not at all"], ["Better", "Worse", "About the same"]]
    rows = []
    for i in range(44):
        topic = topics[i % len(topics)]
        scale = scales[(i * 7) % len(scales)]
        stem = ["How much do you trust", "Do you favor or oppose changes to", "How worried are you about",
                "Is the country doing better on"][int(rng.integers(4))]
        rows.append((f"Q{i:02d}_W1", f"{stem} {topic}?", scale))
    for i in range(6):  # exact duplicates of earlier questions: similarity ties at the same value
        _, text, scale = rows[i * 5]
        rows.append((f"D{i:02d}_W1", text, list(scale)))
    for i in range(6):  # nothing in common with anything: all-zero similarity rows (ties by position)
        rows.append((f"Z{i:02d}_W1", f"zzz{i} qqq{i}", [f"opt{i}a", f"opt{i}b"]))
    rows.append(("E00_W1", "???", ["--", "..."]))  # no term at all: a zero vector
    rows.append(("A00_W1", "Apostrophes don't matter? It's fine", ["I'd say yes", "I'd say no"]))
    rows.append(("A01_W1", "apostrophes DON'T matter, it's FINE", ["i'd say yes", "i'd say no"]))  # case-only duplicate
    frame = pd.DataFrame(rows, columns=["qkey", "question", "options"])
    return frame.sample(frac=1.0, random_state=3).reset_index(drop=True)  # row order must not matter


@pytest.fixture(scope="module")
def sample_questions(sample_sav) -> pd.DataFrame:
    from opinionbench.survey import load_wave

    return load_wave(sample_sav).questions


@pytest.fixture(scope="module")
def real_questions(atp_dir) -> pd.DataFrame:
    """1,500 real questions from the original OpinionQA waves (fixed choice), codebook wording."""
    from opinionbench.survey import load_wave

    frames, total = [], 0
    for wave in ("W26", "W27", "W29", "W32", "W34", "W36", "W41", "W42", "W43", "W45", "W49", "W50", "W54", "W82",
                 "W92"):
        path = atp_dir / f"{wave}.sav"
        if not path.exists():
            continue
        frames.append(load_wave(path).questions[["qkey", "question", "options"]])
        total += len(frames[-1])
        if total >= 1500:
            break
    questions = pd.concat(frames, ignore_index=True).sort_values("qkey").head(1500).reset_index(drop=True)
    if len(questions) < 1500:
        pytest.skip(f"only {len(questions)} questions in the chosen real waves")
    return questions


# -- checks ---------------------------------------------------------------------------------------
def check_table(questions: pd.DataFrame, k: int) -> None:
    brute = BruteForce(questions)
    table = build_neighbours(questions, k=k, block=7, progress=False)  # a small block: many blocks
    assert list(table.columns) == NEIGHBOUR_COLUMNS
    width = min(k, len(brute.qkeys) - 1)
    assert len(table) == len(brute.qkeys) * width
    for qkey, rows in table.groupby("qkey", sort=False):
        want = brute.ranking(qkey)[:width]
        assert rows["rank"].tolist() == list(range(width))
        assert rows["neighbour"].tolist() == [brute.qkeys[j] for j in want], qkey
        np.testing.assert_allclose(rows["similarity"].to_numpy(), brute.sims[brute.index[qkey], want], rtol=0, atol=TOL)
        i = brute.index[qkey]
        assert rows["n_options_equal"].tolist() == [bool(brute.n_options[j] == brute.n_options[i]) for j in want]
    assert table["qkey"].tolist() == [q for q in brute.qkeys for _ in range(width)]  # rows by (qkey order, rank)


def check_most_similar(questions: pd.DataFrame, build_k: int, ks: tuple[int, ...], seed: int = 0) -> Neighbours:
    brute = BruteForce(questions)
    neighbours = Neighbours(build_neighbours(questions, k=build_k, progress=False), questions)
    rng = np.random.default_rng(seed)
    pools = [None, set(rng.choice(brute.qkeys, size=len(brute.qkeys) // 2, replace=False)),
             set(rng.choice(brute.qkeys, size=max(len(brute.qkeys) // 20, 1), replace=False)) | {"NOT_A_QKEY"}]
    for qkey in brute.qkeys:
        for k in ks:
            for same in (False, True):
                for allowed in pools:
                    got = neighbours.most_similar(qkey, k, same_option_count=same, allowed=allowed)
                    want = brute.most_similar(qkey, k, same_option_count=same, allowed=allowed)
                    assert got == want, (qkey, k, same, allowed is not None)
    return neighbours


def test_tfidf_vectors_equal_dense_definition():
    questions = synthetic_questions().sort_values("qkey").reset_index(drop=True)
    texts = [f"{q} {' '.join(o)}" for q, o in zip(questions["question"], questions["options"])]
    sparse = tfidf_vectors(texts).toarray()
    dense = dense_tfidf(texts)
    assert sparse.shape == dense.shape  # both vocabularies are sorted: same columns
    np.testing.assert_allclose(sparse, dense, rtol=0, atol=TOL)


def test_no_term_anywhere_gives_zero_similarities():
    questions = pd.DataFrame({"qkey": ["a", "b", "c"], "question": ["?", "!", "..."], "options": [["-"], ["+"], ["."]]})
    table = build_neighbours(questions, k=5, progress=False)
    assert len(table) == 6 and (table["similarity"] == 0).all()
    assert table.loc[table["qkey"] == "b", "neighbour"].tolist() == ["a", "c"]  # ties: qkey order


def test_duplicate_qkeys_are_refused():
    questions = pd.DataFrame({"qkey": ["a", "a"], "question": ["x", "y"], "options": [["1", "2"], ["1", "2"]]})
    with pytest.raises(ValueError, match="more than once"):
        build_neighbours(questions)


def test_sample_wave_table_and_most_similar(sample_questions):
    check_table(sample_questions, k=50)  # k > n - 1: every question's whole ranking
    check_table(sample_questions, k=3)
    check_most_similar(sample_questions, build_k=3, ks=(1, 3, 5, 20))


def test_synthetic_table_and_most_similar():
    questions = synthetic_questions()
    check_table(questions, k=10)
    check_table(questions, k=100)
    n = check_most_similar(questions, build_k=5, ks=(1, 3, 5, 12, 100))
    assert n.fallbacks > 0  # the filters left fewer than k stored neighbours: the exact row was used


def test_stored_neighbours_and_fallback_row_agree():
    questions = synthetic_questions()
    neighbours = Neighbours.from_questions(questions, k=8, progress=False)
    for qkey in questions["qkey"]:
        names, sims = neighbours.stored(qkey)
        row = neighbours.similarity_row(qkey)
        assert [row[neighbours.qkeys.index(q)] for q in names] == sims.tolist()  # bitwise: one computation


def test_table_from_another_dataset_is_refused():
    questions = synthetic_questions()
    table = build_neighbours(questions, k=3, progress=False)
    with pytest.raises(ValueError, match="another dataset"):
        Neighbours(table, questions[questions["qkey"] != "Q00_W1"])


@pytest.mark.integration
@pytest.mark.slow
def test_real_questions_equal_brute_force(real_questions):
    check_table(real_questions, k=20)
    brute = BruteForce(real_questions)
    neighbours = Neighbours(build_neighbours(real_questions, k=20, progress=False), real_questions)
    rng = np.random.default_rng(1)
    have_group = set(rng.choice(brute.qkeys, size=900, replace=False))  # like a group present on 60 % of questions
    for qkey in brute.qkeys:
        for k, same, allowed in ((3, False, have_group), (5, True, have_group), (5, False, None), (30, True, None)):
            assert neighbours.most_similar(qkey, k, same_option_count=same, allowed=allowed) == \
                brute.most_similar(qkey, k, same_option_count=same, allowed=allowed), (qkey, k, same)
    assert neighbours.fallbacks > 0
