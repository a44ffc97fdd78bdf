"""Exact search with a bfloat16 coarse pass (faceopt.system.search): the same top-k as the float32 brute
force on random data and on near-ties below bfloat16's resolution (where the re-rank is widened or falls
back to the full product), single queries and batches, k larger than N, bad inputs, and the benchmark."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from faceopt.system import search as search_module
from faceopt.system.search import ExactSearch, benchmark_search


def _unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    rows = rng.standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _brute_force(matrix: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Float32 ``matrix @ q`` for every query: ``[Q, N]``."""
    return (matrix @ queries.T).T


def _assert_same_top_k(indices: np.ndarray, scores: np.ndarray, matrix: np.ndarray, queries: np.ndarray) -> None:
    """The indices are the brute force's top k, rank by rank; two rows may swap only where their float32 scores
    tie (within 1e-6), and the returned scores are the float32 products."""
    brute = _brute_force(matrix, queries)
    k = indices.shape[1]
    reference = np.argsort(-brute, axis=1, kind="stable")[:, :k]
    reference_scores = np.take_along_axis(brute, reference, axis=1)
    got_scores = np.take_along_axis(brute, indices, axis=1)
    np.testing.assert_allclose(got_scores, reference_scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(scores, got_scores, rtol=0, atol=1e-5)
    differs = indices != reference
    assert np.all(np.abs(got_scores - reference_scores)[differs] <= 1e-6)
    assert all(len(set(row.tolist())) == k for row in indices)  # no row twice


def _near_ties(rng: np.random.Generator, n: int, dim: int, ties: int, step: float = 2e-6) -> tuple[np.ndarray, np.ndarray]:
    """A unit query and a gallery in which ``ties`` rows have cosines ``1 - step, 1 - 2 step, ...`` with it:
    far below bfloat16's resolution near 1 (2**-8), well above float32's (about 1e-7). Rows are shuffled."""
    query = _unit_rows(rng, 1, dim)[0].astype(np.float64)
    others = rng.standard_normal((ties, dim))
    others -= np.outer(others @ query, query)  # orthogonal to the query
    others /= np.linalg.norm(others, axis=1, keepdims=True)
    cosines = 1.0 - step * np.arange(1, ties + 1)
    near = cosines[:, None] * query + np.sqrt(1.0 - cosines**2)[:, None] * others
    matrix = np.concatenate([near.astype(np.float32), _unit_rows(rng, n - ties, dim)])
    return matrix[rng.permutation(n)], query.astype(np.float32)


@pytest.fixture(scope="module")
def gallery() -> np.ndarray:
    return _unit_rows(np.random.default_rng(0), 20_000, 128)


@pytest.fixture(scope="module")
def index(gallery: np.ndarray) -> ExactSearch:
    return ExactSearch(gallery)


@pytest.fixture(scope="module")
def probes(gallery: np.ndarray) -> np.ndarray:
    """40 noisy copies of gallery rows (a clear nearest neighbour) and 40 random directions."""
    rng = np.random.default_rng(1)
    near = gallery[rng.integers(0, len(gallery), 40)] + 0.02 * rng.standard_normal((40, gallery.shape[1]))
    queries = np.concatenate([near, rng.standard_normal((40, gallery.shape[1]))]).astype(np.float32)
    return queries / np.linalg.norm(queries, axis=1, keepdims=True)


# --- exactness ---------------------------------------------------------------------------------

def test_batch_equals_brute_force_on_random_data(index: ExactSearch, gallery: np.ndarray, probes: np.ndarray):
    indices, scores = index.search(probes, 10)
    assert indices.shape == scores.shape == (80, 10)
    assert indices.dtype == np.int64 and scores.dtype == np.float32
    _assert_same_top_k(indices, scores, gallery, probes)
    assert np.all(np.diff(scores, axis=1) <= 0)  # best first


def test_single_query_gives_the_batch_row(index: ExactSearch, gallery: np.ndarray, probes: np.ndarray):
    batch_idx, batch_scores = index.search(probes, 5)
    for i in (0, 41):
        idx, scores = index.search(probes[i], 5)
        assert idx.shape == scores.shape == (5,)
        np.testing.assert_array_equal(idx, batch_idx[i])
        np.testing.assert_allclose(scores, batch_scores[i], rtol=0, atol=1e-6)
    assert index.search(probes[0], 1)[0][0] == int(np.argmax(gallery @ probes[0]))


def test_blocks_of_queries_give_the_same_answer(gallery: np.ndarray, probes: np.ndarray, index: ExactSearch):
    small_blocks = ExactSearch(gallery, block=7)
    np.testing.assert_array_equal(small_blocks.search(probes, 10)[0], index.search(probes, 10)[0])


def test_exact_even_without_margin(gallery: np.ndarray, probes: np.ndarray):
    """With no spare candidates the check fails often: widening (or the fallback) keeps the answer exact."""
    tight = ExactSearch(gallery, margin=0)
    indices, scores = tight.search(probes, 10)
    _assert_same_top_k(indices, scores, gallery, probes)
    assert tight.widened + tight.fallbacks > 0
    assert tight.searched == len(probes)


def test_the_bound_holds_for_every_row(index: ExactSearch, gallery: np.ndarray, probes: np.ndarray):
    """upper(coarse score) is above the exact (float64) score of every row, and not loose by more than 0.05."""
    queries = torch.from_numpy(probes)
    queries_bf16 = search_module._bf16_flushed(queries)
    coarse = search_module._bf16_scores(queries_bf16, index._coarse_t)
    upper = index._upper_bounds(coarse, index._query_budgets(queries, queries_bf16)[:, None]).numpy()
    exact = probes.astype(np.float64) @ gallery.astype(np.float64).T
    assert np.all(upper >= exact)
    assert np.max(upper - exact) < 0.05


def test_the_bound_holds_when_only_the_output_rounding_is_left():
    """Rows and queries already in bfloat16: no input rounding, so the error is the rounding of the float32
    sum to bfloat16 (up to 2**-9 of the score), which the 2**-7 |c| term alone must cover."""
    rng = np.random.default_rng(7)
    rows = torch.from_numpy(_unit_rows(rng, 6_000, 64)).to(torch.bfloat16).to(torch.float32).numpy()
    rows = rows[np.abs(np.linalg.norm(rows, axis=1) - 1.0) <= 1e-3]
    index = ExactSearch(rows)
    assert index._max_residual == 0.0
    queries = torch.from_numpy(rows[:16].copy())  # scores up to 1, where a bfloat16 ulp is largest
    coarse = search_module._bf16_scores(search_module._bf16_flushed(queries), index._coarse_t)
    budgets = index._query_budgets(queries, search_module._bf16_flushed(queries))[:, None]
    exact = queries.numpy().astype(np.float64) @ rows.astype(np.float64).T
    assert np.max(np.abs(coarse.to(torch.float64).numpy() - exact)) > 10 * float(budgets.max())  # the rounding dominates
    assert np.all(index._upper_bounds(coarse, budgets).numpy() >= exact)
    indices, scores = index.search(queries.numpy(), 10)
    _assert_same_top_k(indices, scores, rows, queries.numpy())


def test_near_ties_widen_the_rerank_and_stay_exact():
    """300 rows within 6e-4 of the query's cosine 1 all look the same to bfloat16: the best 42 coarse
    candidates cannot prove the top 10, so the index re-ranks every row that could still be in it."""
    matrix, query = _near_ties(np.random.default_rng(2), 8_000, 64, ties=300)
    index = ExactSearch(matrix)
    indices, scores = index.search(query, 10)
    reference = np.argsort(-(matrix @ query), kind="stable")[:10]
    np.testing.assert_array_equal(indices, reference)
    assert (index.widened, index.fallbacks) == (1, 0)
    np.testing.assert_allclose(scores, 1.0 - 2e-6 * np.arange(1, 11), atol=3e-7)


def test_near_ties_beyond_an_eighth_of_the_rows_fall_back_to_the_full_product():
    matrix, query = _near_ties(np.random.default_rng(3), 8_000, 64, ties=1_500)
    index = ExactSearch(matrix)
    queries = np.stack([query, _unit_rows(np.random.default_rng(4), 1, 64)[0]])
    indices, scores = index.search(queries, 20)
    np.testing.assert_array_equal(indices[0], np.argsort(-(matrix @ query), kind="stable")[:20])
    _assert_same_top_k(indices, scores, matrix, queries)
    assert index.fallbacks == 1  # the near-tie query only
    assert "1 fallbacks" in repr(index)


def test_a_coarse_kernel_outside_the_bound_is_caught(monkeypatch: pytest.MonkeyPatch, gallery: np.ndarray,
                                                     probes: np.ndarray):
    """Were torch's bf16 product less accurate than assumed (here: off by 0.05), the index would notice when
    built and answer with the float32 product: slower, still exact."""
    honest = search_module._bf16_scores
    monkeypatch.setattr(search_module, "_bf16_scores", lambda q, m: honest(q, m) + 0.05)
    with pytest.warns(RuntimeWarning, match="error bound"):
        index = ExactSearch(gallery[:5_000])
    assert index.coarse != "bfloat16" and not index.coarse_kernel_is_bounded()
    indices, scores = index.search(probes[:6], 10)
    _assert_same_top_k(indices, scores, gallery[:5_000], probes[:6])
    assert index.fallbacks == 6


def test_k_larger_than_n_returns_every_row_sorted():
    matrix = _unit_rows(np.random.default_rng(5), 30, 16)
    query = _unit_rows(np.random.default_rng(6), 1, 16)[0]
    indices, scores = ExactSearch(matrix).search(query, 100)
    assert indices.shape == (30,)
    np.testing.assert_array_equal(indices, np.argsort(-(matrix @ query), kind="stable"))
    np.testing.assert_allclose(scores, np.sort(matrix @ query)[::-1], rtol=0, atol=1e-6)


def test_counters_and_memory(gallery: np.ndarray, probes: np.ndarray):
    index = ExactSearch(gallery)
    index.search(probes, 3)
    assert index.searched == len(probes)
    index.reset_counters()
    assert (index.searched, index.widened, index.fallbacks) == (0, 0, 0)
    assert index.coarse_nbytes == gallery.size * 2
    assert index.nbytes == gallery.size * 6
    assert index.coarse_kernel_is_bounded()


# --- bad inputs --------------------------------------------------------------------------------

@pytest.mark.parametrize(("matrix", "message"), [
    (np.ones((4, 3), dtype=np.float32), r"row 0 .* norm 1\.73.*L2-normalise"),
    (np.zeros(3, dtype=np.float32), r"must be 2-D.*shape \(3,\)"),
    (np.array([[1.0, 0.0], [np.nan, 0.0]], dtype=np.float32), r"row 1 .*NaN"),
    ([["a", "b"]], r"not a numeric array"),
])
def test_bad_matrices_are_refused(matrix: object, message: str):
    with pytest.raises(ValueError, match=message):
        ExactSearch(matrix)  # type: ignore[arg-type]


def test_bad_queries_and_k_are_refused(index: ExactSearch):
    good = np.zeros(128, dtype=np.float32)
    with pytest.raises(ValueError, match=r"shape \(64,\).*128-d"):
        index.search(np.zeros(64, dtype=np.float32), 3)
    with pytest.raises(ValueError, match=r"shape \(2, 3, 128\)"):
        index.search(np.zeros((2, 3, 128), dtype=np.float32), 3)
    with pytest.raises(ValueError, match="NaN or infinity"):
        index.search(np.full(128, math.nan, dtype=np.float32), 3)
    for k in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="k must be a positive integer"):
            index.search(good, k)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="margin"):
        ExactSearch(np.eye(3, dtype=np.float32), margin=-1)


# --- benchmark ---------------------------------------------------------------------------------

def test_benchmark_runs_small_and_finds_the_exact_answer():
    report = benchmark_search(n=3_000, dim=64, queries=9, k=5, batch=4, threads=1, repeats=1)
    assert report["recall_at_k"]["exact_search"] == 1.0
    assert report["n"] == 3_000 and report["threads"] == 1
    assert set(report["ms_per_query"]) == {"numpy", "faiss", "exact_search"}
    assert report["memory_bytes"]["numpy_float32"] == 3_000 * 64 * 4
    assert report["memory_bytes"]["exact_search_total"] == 3_000 * 64 * 6
    assert isinstance(report["machine"], str) and report["machine"]
    if report["faiss"]["available"]:
        assert report["recall_at_k"]["faiss"] == 1.0
    else:
        assert "faiss" in report["faiss"]["why"]
