"""Exact 1:N search of unit face embeddings, made fast by a bfloat16 coarse pass with a proof of exactness.

:class:`faceopt.system.gallery.Gallery` answers a probe with one float32 product ``E @ q`` over every stored
embedding. :class:`ExactSearch` returns *the same* top-``k`` rows (ties at float32 resolution aside) with
less arithmetic per row, in two stages:

1. **Coarse pass.** A bfloat16 copy of the matrix (half the bytes of float32) is multiplied with the
   bfloat16-rounded queries by ``torch.mm``, one matrix-matrix product per block of queries (oneDNN's
   bf16 GEMM, which uses the CPU's AVX512-BF16 / AMX instructions where they exist). The ``k + margin``
   rows with the best coarse scores are the candidates of each query.
2. **Exact re-rank.** The candidates' float32 rows are multiplied with the float32 query; the best ``k``
   of these exact scores are the answer.

**Why the answer is exact.** For a row ``x`` and a query ``q`` let ``x~``, ``q~`` be their bfloat16 copies
(subnormals flushed to zero) and ``c`` the coarse score the kernel returns. With ``r = max ||x~ - x||``
over the rows and ``R = max ||x||`` (both measured when the index is built, in float64), ``e = ||q~ - q||``
(measured per query), ``g = D u / (1 - D u)`` with ``u = 2**-24`` (float32 summation of ``D`` products in
any order) and ``t`` the smallest normal float32,

    |x.q - c| <= 2**-7 |c|                               (the float32 sum rounded to bfloat16: one ulp)
               + r (||q|| + e) + R e                      (rounding of x and q: Cauchy-Schwarz on the residuals)
               + g (R + r) (||q|| + e) + (D + 1) t        (float32 accumulation, flushed underflow)

The float32 scores of the re-rank and of the brute-force product each differ from the real ``x.q`` by at
most ``g R ||q|| + D t``. With ``B_q`` the sum of the last two lines above plus three times that (computed in
float64 and rounded up), ``upper(c) = c + 2**-7 |c| + B_q`` is more than the exact score of *every* row
whose coarse score is ``c``, with room for the float32 errors. ``upper`` increases with ``c``, so when the ``k``-th best
re-ranked score ``s_k`` of a query is greater than ``upper(c*)``, ``c*`` the smallest coarse score among its
candidates, no excluded row can reach the top ``k`` of the float32 brute force either. Otherwise the query
is *widened*: every row with ``upper(c) >= s_k`` (read from the coarse scores already computed) is re-ranked
exactly, which is again a proof; if more than ``N / 8`` rows qualify (near-duplicates of the query closer
together than the bound), the query falls back to the full float32 product. :attr:`ExactSearch.widened`
and :attr:`ExactSearch.fallbacks` count both.

The bound assumes the bf16 kernel accumulates in float32 (oneDNN and ATen's own bf16 GEMM both do) and
rounds its float32 result to bfloat16 by nearest or by truncation. Building an index checks this on a
sample of rows (:meth:`ExactSearch.coarse_kernel_is_bounded`); where the kernel breaks the bound, the
index warns and answers every query with the float32 product (exact, without the speed-up).

**Why bfloat16 and not int8.** Measured on the machine this module was written on (AMD EPYC, 2 logical
cores with AVX512-BF16 and AVX512-VNNI, torch 2.14.1; a 200,000 x 512 gallery, 64 queries, median ms, the
machine otherwise idle): the float32 product takes 132 (numpy ``matrix @ queries.T``) or 114 (``torch.mm``);
``torch.mm`` in bfloat16 17 (``[N, Q]`` output) to 36 (``[Q, N]``); int8 x int8 -> int32 (``torch._int_mm``)
27 and fbgemm's ``torch.ao.nn.quantized.dynamic.Linear`` 38. The whole coarse stage, top-``k + margin``
selection included, took 30-45 for bfloat16 and 74 for int8 (its int32 scores need a transpose and a
conversion before ``topk``), 112 in float32; with another job busy on both cores the order was the same
(bf16 72-100, int8 198-235). bfloat16 is kept: the faster pass, an error bound about four times tighter
than int8's with per-row scales (derived: ``~0.005`` against ``~0.02`` for 512-d unit vectors; fewer candidates
and fewer fallbacks), and no deprecated quantized-tensor API. An int8 copy would take half the memory
(``N D`` bytes against ``2 N D``; the float32 rows are kept either way for the re-rank).

End to end (:func:`benchmark_search`, same machine, 1,000,000 x 512, k = 10, 64 queries, recall 1.0, no
fallback): 3.0 ms per query in batches of 64, against 7.9 for numpy and 34.9 for faiss 1.15.1's
``IndexFlatIP``. One query at a time the coarse pass saves little (38 ms against 44 for numpy): a
matrix-vector product is bound by memory bandwidth, and bfloat16's GEMV kernels are less tuned than
float32's. Batches of queries are where it pays.
"""
from __future__ import annotations

import contextlib
import math
import operator
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from faceopt.config import quiet
from faceopt.provenance import machine_description

__all__ = ["ExactSearch", "benchmark_search", "search_table"]

UNIT_TOLERANCE = 1e-3
"""How far from 1 a row's L2 norm may be (the tolerance of :mod:`faceopt.system.gallery`)."""

_BF16_ULP = 2.0 ** -7  # one unit in the last place of bfloat16, relative to the value (8-bit significand)
_F32_UNIT_ROUNDOFF = 2.0 ** -24
_TINY = float(torch.finfo(torch.float32).tiny)  # = bfloat16's smallest normal: same exponent range
_BUILD_CHUNK_ROWS = 16_384  # rows converted at a time when building (bounds the temporaries)
_WIDEN_FRACTION = 8  # a failed check re-ranks at most N / 8 rows before falling back to the full product
_SELF_CHECK_ROWS = 512
_SELF_CHECK_QUERIES = 8


def _flush_subnormals_(x: torch.Tensor) -> torch.Tensor:
    """Set the subnormal entries of ``x`` to zero, in place (AVX512-BF16 reads them as zero)."""
    return x.masked_fill_(x.abs() < _TINY, 0.0)


def _bf16_flushed(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to bfloat16 (to nearest), with subnormal results flushed to zero."""
    return _flush_subnormals_(x.to(torch.bfloat16, copy=True))


def _bf16_scores(queries_bf16: torch.Tensor, matrix_bf16: torch.Tensor) -> torch.Tensor:
    """The coarse scores ``[Q, N]`` (bfloat16): one bf16 GEMM, float32 accumulation inside the kernel."""
    return torch.mm(queries_bf16, matrix_bf16.T)


def _summation_gamma(dim: int) -> float:
    """``g = D u / (1 - D u)``: the relative error bound of a float32 sum of ``dim`` products, any order."""
    du = dim * _F32_UNIT_ROUNDOFF
    return du / (1.0 - du)


def _positive_int(value: object, what: str) -> int:
    """``value`` as an int >= 1, or a ValueError naming ``what``."""
    try:
        number = -1 if isinstance(value, bool) else operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = -1
    if number < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return number


def _checked_matrix(matrix: ArrayLike) -> NDArray[np.float32]:
    """``matrix`` as a C-contiguous float32 ``[N, D]`` array (not copied when it already is one), or a
    ValueError that says what is wrong with it and how to fix it."""
    try:
        m = np.ascontiguousarray(matrix, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"the gallery matrix is not a numeric array ({e}); pass a float32 array [N, D]") from None
    if m.ndim != 2:
        raise ValueError(f"the gallery matrix must be 2-D, [N, D] with one embedding per row, got shape {m.shape}; "
                         "stack the embeddings with np.stack(rows)")
    if m.shape[1] < 1:
        raise ValueError(f"the gallery matrix has shape {m.shape}: embeddings need at least one dimension")
    return m


def _check_rows(rows: NDArray[np.float32], first: int) -> float:
    """Check that ``rows`` (rows ``first``, ``first + 1``, ... of the matrix) are finite and of unit norm;
    return their largest norm (float64)."""
    finite = np.isfinite(rows).all(axis=1)
    if not finite.all():
        bad = first + int(np.argmin(finite))
        raise ValueError(f"row {bad} of the gallery matrix contains NaN or infinity; drop or re-embed that face")
    norms = np.sqrt(np.einsum("ij,ij->i", rows, rows, dtype=np.float64))
    off = np.abs(norms - 1.0) > UNIT_TOLERANCE
    if off.any():
        bad = int(np.argmax(off))
        raise ValueError(f"row {first + bad} of the gallery matrix has L2 norm {norms[bad]:.6g}, not 1 (within "
                         f"{UNIT_TOLERANCE}); L2-normalise the rows first: matrix / np.linalg.norm(matrix, axis=1, "
                         "keepdims=True)")
    return float(norms.max(initial=0.0))


def _checked_queries(queries: ArrayLike, dim: int) -> tuple[NDArray[np.float32], bool]:
    """``queries`` as a float32 ``[Q, dim]`` array, and whether a single ``[dim]`` vector was given."""
    try:
        q = np.ascontiguousarray(queries, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"the queries are not a numeric array ({e}); pass float32 [Q, {dim}] or [{dim}]") from None
    single = q.ndim == 1
    if single:
        q = q[None, :]
    if q.ndim != 2 or q.shape[1] != dim:
        raise ValueError(f"the queries have shape {np.shape(queries)}; this index holds {dim}-d embeddings: "
                         f"pass one query of shape ({dim},) or a batch of shape (Q, {dim})")
    if not np.isfinite(q).all():
        raise ValueError("the queries contain NaN or infinity; embed those faces again")
    return q, single


class ExactSearch:
    """Exact top-``k`` inner-product search over unit rows: a bfloat16 coarse pass, a float32 re-rank of the
    ``k + margin`` best candidates, and a per-query proof that no other row can be in the top ``k``
    (widening the re-rank, or falling back to the full float32 product, where the proof fails). See the
    module docstring for the error bound.

    ``matrix`` is ``[N, D]`` float32 with rows of unit L2 norm (within 1e-3). It is kept without a copy
    when it is already C-contiguous float32: do not modify it afterwards (build a new index instead).
    ``block`` queries are multiplied at a time (the coarse scores take ``2 * block * N`` bytes).

    Counters, for benchmarks (reset with :meth:`reset_counters`): :attr:`searched` queries answered,
    :attr:`widened` of them re-ranked on a widened candidate set, :attr:`fallbacks` of them answered by the
    full float32 product."""

    def __init__(self, matrix: ArrayLike, *, margin: int = 32, block: int = 64) -> None:
        if isinstance(margin, bool) or not isinstance(margin, (int, np.integer)) or margin < 0:
            raise ValueError(f"margin must be an integer >= 0, got {margin!r}")
        self.margin = int(margin)
        self.block = _positive_int(block, "block")
        self.matrix = _checked_matrix(matrix)
        self._matrix_t = torch.from_numpy(self.matrix)  # shares memory with self.matrix
        self._coarse_t, self._max_norm, self._max_residual = self._build_coarse_copy()
        self._gamma = _summation_gamma(self.dim)
        self.searched = 0
        self.widened = 0
        self.fallbacks = 0
        self.coarse = "bfloat16"
        if not self.coarse_kernel_is_bounded():
            warnings.warn("torch's bfloat16 matrix product on this machine exceeds the error bound ExactSearch relies "
                          "on (it does not accumulate in float32?); every query will use the float32 product",
                          RuntimeWarning, stacklevel=2)
            self.coarse = "none (float32 product only: the bf16 kernel failed its self-check)"

    # --- properties --------------------------------------------------------------------------

    @property
    def num_rows(self) -> int:
        """``N``, the number of rows."""
        return int(self.matrix.shape[0])

    @property
    def dim(self) -> int:
        """``D``, the embedding dimension."""
        return int(self.matrix.shape[1])

    @property
    def coarse_nbytes(self) -> int:
        """Bytes of the bfloat16 copy used by the coarse pass (``2 N D``)."""
        return int(self._coarse_t.numel() * self._coarse_t.element_size())

    @property
    def nbytes(self) -> int:
        """Bytes of both representations kept: float32 rows (re-rank, fallback) and the bf16 copy (``6 N D``)."""
        return int(self.matrix.nbytes) + self.coarse_nbytes

    def reset_counters(self) -> None:
        """Set :attr:`searched`, :attr:`widened` and :attr:`fallbacks` to zero."""
        self.searched = self.widened = self.fallbacks = 0

    # --- building ----------------------------------------------------------------------------

    def _build_coarse_copy(self) -> tuple[torch.Tensor, float, float]:
        """Validate the rows and build their bfloat16 copy chunk by chunk; return it with the largest row
        norm ``R`` and the largest rounding residual ``r = max ||x~ - x||`` (float64, rounded up)."""
        coarse = torch.empty(self.matrix.shape, dtype=torch.bfloat16)
        max_norm = max_residual = 0.0
        for start in range(0, self.num_rows, _BUILD_CHUNK_ROWS):
            rows = self.matrix[start:start + _BUILD_CHUNK_ROWS]
            max_norm = max(max_norm, _check_rows(rows, start))
            rows_t = torch.from_numpy(rows)
            rounded = coarse[start:start + len(rows)]
            _flush_subnormals_(rounded.copy_(rows_t))
            residual = (rounded.to(torch.float32) - rows_t).numpy()  # exact in float32: the dropped low bits
            squares = np.einsum("ij,ij->i", residual, residual, dtype=np.float64)
            max_residual = max(max_residual, math.sqrt(float(squares.max(initial=0.0))))
        return coarse, max_norm * (1 + 1e-12), max_residual * (1 + 1e-12)

    def coarse_kernel_is_bounded(self) -> bool:
        """Whether the bf16 product of this machine stays within the error bound on a sample: up to 512 rows
        against random queries and copies of sampled rows (scores near 1), compared in float64."""
        if self.num_rows == 0:
            return True
        rows_idx = torch.linspace(0, self.num_rows - 1, min(self.num_rows, _SELF_CHECK_ROWS)).round().long()
        rows = self._matrix_t[rows_idx]
        generator = torch.Generator().manual_seed(0)
        probes = torch.randn(_SELF_CHECK_QUERIES, self.dim, generator=generator)
        probes = torch.cat([probes / probes.norm(dim=1, keepdim=True), rows[:2]])
        probes_bf16 = _bf16_flushed(probes)
        coarse = _bf16_scores(probes_bf16, self._coarse_t[rows_idx]).to(torch.float64)
        exact = probes.to(torch.float64) @ rows.to(torch.float64).T
        budget = self._query_budgets(probes, probes_bf16)[:, None]
        return bool(((coarse - exact).abs() <= _BF16_ULP * coarse.abs() + budget).all())

    # --- the bound ---------------------------------------------------------------------------

    def _query_budgets(self, queries: torch.Tensor, queries_bf16: torch.Tensor) -> torch.Tensor:
        """``B_q`` per query (float64): every term of the bound that does not depend on the coarse score,
        plus the float32 error of the re-ranked and brute-force scores (see the module docstring)."""
        q64 = queries.to(torch.float64)
        q_norm = q64.norm(dim=1)
        q_residual = (queries_bf16.to(torch.float64) - q64).norm(dim=1) * (1 + 1e-12)
        r, big_r, g = self._max_residual, self._max_norm, self._gamma
        rounding = r * (q_norm + q_residual) + big_r * q_residual
        accumulation = g * (big_r + r) * (q_norm + q_residual) + (self.dim + 1) * _TINY
        float32_scores = 3 * (g * big_r * q_norm + self.dim * _TINY)
        return (rounding + accumulation + float32_scores) * (1 + 1e-9)

    @staticmethod
    def _upper_bounds(coarse: torch.Tensor, budgets: torch.Tensor) -> torch.Tensor:
        """``upper(c) = c + 2**-7 |c| + B_q``: above the exact score of any row whose coarse score is ``c``
        (float64; ``budgets`` broadcasts against ``coarse``)."""
        c = coarse.to(torch.float64)
        return c + _BF16_ULP * c.abs() + budgets

    # --- searching ---------------------------------------------------------------------------

    def search(self, queries: ArrayLike, k: int) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
        """The ``k`` rows with the largest inner product with each query, best first, exactly as the float32
        brute force ``matrix @ q`` ranks them (rows whose float32 scores tie may come in another order).

        ``queries`` is ``[Q, D]`` (a batch: one matrix-matrix product per :attr:`block` queries) or ``[D]``
        (one query); any finite vectors (unit ones make the scores cosines). Returns ``(indices, scores)``,
        int64 and float32, shaped ``[Q, k']`` (``[k']`` for a single query) with ``k' = min(k, N)``: when
        ``k`` exceeds the number of rows, every row comes back, sorted. The scores are the float32 products."""
        top = _positive_int(k, "k")
        q, single = _checked_queries(queries, self.dim)
        kept = min(top, self.num_rows)
        indices = np.empty((len(q), kept), dtype=np.int64)
        scores = np.empty((len(q), kept), dtype=np.float32)
        for start in range(0, len(q), self.block):
            block_idx, block_scores = self._search_block(torch.from_numpy(q[start:start + self.block]), kept)
            indices[start:start + len(block_idx)] = block_idx.numpy()
            scores[start:start + len(block_idx)] = block_scores.numpy()
        self.searched += len(q)
        if single:
            return indices[0], scores[0]
        return indices, scores

    def _search_block(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Top ``k`` rows of each query of a block: coarse pass, exact re-rank, check, widen or fall back."""
        candidates_per_query = k + self.margin
        if k == 0 or candidates_per_query >= self.num_rows or self.coarse != "bfloat16":
            if self.coarse != "bfloat16":
                self.fallbacks += len(queries)
            return self._full_product_top_k(queries, k)
        queries_bf16 = _bf16_flushed(queries)
        coarse = _bf16_scores(queries_bf16, self._coarse_t)  # [B, N]
        coarse_best, candidates = torch.topk(coarse, candidates_per_query, dim=1, sorted=False)
        exact = torch.bmm(self._matrix_t[candidates], queries[:, :, None])[:, :, 0]  # [B, k + margin] float32
        top_scores, top_pos = torch.topk(exact, k, dim=1)
        top_idx = torch.gather(candidates, 1, top_pos)
        budgets = self._query_budgets(queries, queries_bf16)
        proven = top_scores[:, -1].to(torch.float64) > self._upper_bounds(coarse_best.min(dim=1).values, budgets)
        for i in torch.nonzero(~proven).flatten().tolist():
            top_idx[i], top_scores[i] = self._widened_top_k(queries[i], coarse[i], budgets[i], top_scores[i, -1], k)
        return top_idx, top_scores

    def _widened_top_k(self, query: torch.Tensor, coarse: torch.Tensor, budget: torch.Tensor,
                       kth_score: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One query whose check failed: re-rank every row that could still beat ``kth_score`` (a lower bound
        on the true ``k``-th score), or, when more than ``N / 8`` could, take the full float32 product."""
        possible = torch.nonzero(self._upper_bounds(coarse, budget) >= kth_score.to(torch.float64)).flatten()
        if len(possible) > self.num_rows // _WIDEN_FRACTION or len(possible) < k:  # (< k: only if the bound broke)
            self.fallbacks += 1
            idx, scores = self._full_product_top_k(query[None, :], k)
            return idx[0], scores[0]
        self.widened += 1
        exact = torch.mv(self._matrix_t[possible], query)
        scores, pos = torch.topk(exact, k)
        return possible[pos], scores

    def _full_product_top_k(self, queries: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The brute force: all float32 scores ``[B, N]``, then their top ``k``."""
        if k == 0:
            return torch.empty((len(queries), 0), dtype=torch.int64), torch.empty((len(queries), 0))
        scores, idx = torch.topk(torch.mm(queries, self._matrix_t.T), k, dim=1)
        return idx, scores

    def __repr__(self) -> str:
        return (f"ExactSearch({self.num_rows} x {self.dim}, coarse {self.coarse}, margin {self.margin}, "
                f"{self.searched} searched, {self.widened} widened, {self.fallbacks} fallbacks)")


# --- benchmark -------------------------------------------------------------------------------------


def _progress(message: str) -> None:
    """One line per stage on stderr, silent under CI, nbval and papermill (``faceopt.config.quiet``)."""
    if not quiet():
        print(f"[benchmark_search] {message}", file=sys.stderr, flush=True)


def _random_unit_matrix(n: int, dim: int, rng: np.random.Generator, chunk: int = 65_536) -> NDArray[np.float32]:
    """``n`` random unit rows (Gaussian, normalised), generated in float32 chunks to bound memory."""
    matrix = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        rows = matrix[start:start + chunk]
        rng.standard_normal(rows.shape, dtype=np.float32, out=rows)
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    return matrix


def _benchmark_queries(matrix: NDArray[np.float32], count: int, rng: np.random.Generator) -> NDArray[np.float32]:
    """``count`` unit queries: three in four are noisy copies of random rows (cosine about 0.95 with the
    row, so each has a clear nearest neighbour), the rest pure random directions."""
    n, dim = matrix.shape
    n_random = count // 4
    near = matrix[rng.integers(0, n, count - n_random)] + rng.standard_normal((count - n_random, dim),
                                                                              dtype=np.float32) * (0.3 / math.sqrt(dim))
    queries = np.concatenate([near, rng.standard_normal((n_random, dim), dtype=np.float32)])
    return np.ascontiguousarray(queries / np.linalg.norm(queries, axis=1, keepdims=True), dtype=np.float32)


def _numpy_top_k(matrix: NDArray[np.float32], batch: NDArray[np.float32], k: int) -> NDArray[np.int64]:
    """The reference: the float32 scores ``matrix @ batch.T``, then ``argpartition`` and a sort of the ``k``
    best. The scores are computed transposed, as ``batch @ matrix.T`` (the same products), so that
    ``argpartition`` runs along contiguous rows: along the columns of ``[N, B]`` it took 5 times longer."""
    scores = batch @ matrix.T  # [B, N]
    part = np.argpartition(scores, -k, axis=1)[:, -k:]  # [B, k], unordered
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def _recall(found: NDArray[np.int64], reference: NDArray[np.int64]) -> float:
    """Mean over queries of ``|found & reference| / k``."""
    hits = [len(set(f.tolist()) & set(r.tolist())) for f, r in zip(found, reference)]
    return float(np.mean(hits) / reference.shape[1]) if reference.size else 1.0


def _timed_ms_per_query(run: Callable[[NDArray[np.float32]], NDArray[np.int64]], batches: list[NDArray[np.float32]],
                        repeats: int) -> tuple[float, NDArray[np.int64]]:
    """Run ``run`` over all batches once (warm-up; its results are returned), then ``repeats`` timed passes;
    the median pass time per query in milliseconds."""
    results = np.concatenate([run(b) for b in batches])
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            run(b)
        passes.append(time.perf_counter() - start)
    return 1e3 * statistics.median(passes) / len(results), results


@contextlib.contextmanager
def _thread_limit(threads: int | None) -> Iterator[int]:
    """Limit torch, faiss and numpy's BLAS (through threadpoolctl, when installed) to ``threads`` threads for
    the block, restoring them after; None leaves them as they are. Yields torch's thread count."""
    if threads is None:
        yield torch.get_num_threads()
        return
    used = _positive_int(threads, "threads")
    with contextlib.ExitStack() as restore:
        restore.callback(torch.set_num_threads, torch.get_num_threads())
        torch.set_num_threads(used)
        with contextlib.suppress(ImportError):
            import faiss

            restore.callback(faiss.omp_set_num_threads, faiss.omp_get_max_threads())
            faiss.omp_set_num_threads(used)
        with contextlib.suppress(ImportError):
            from threadpoolctl import threadpool_limits

            restore.enter_context(threadpool_limits(limits=used))
        yield used


def _faiss_search(matrix: NDArray[np.float32], batches: list[NDArray[np.float32]], k: int,
                  repeats: int) -> dict[str, Any]:
    """Time faiss's exact ``IndexFlatIP`` (or say why it could not run)."""
    try:
        import faiss
    except ImportError as e:
        return {"available": False, "why": f"faiss is not importable ({e}); pip install faiss-cpu"}
    index = faiss.IndexFlatIP(matrix.shape[1])
    index.add(matrix)
    ms, found = _timed_ms_per_query(lambda b: index.search(b, k)[1].astype(np.int64), batches, repeats)
    return {"available": True, "version": faiss.__version__, "ms": ms, "found": found,
            "nbytes": int(index.ntotal * index.code_size)}


def benchmark_search(n: int = 1_000_000, dim: int = 512, queries: int = 64, k: int = 10, *, batch: int = 64,
                     seed: int = 0, threads: int | None = None, repeats: int = 3) -> dict[str, Any]:
    """Time exact top-``k`` search over ``n`` random unit ``dim``-d rows three ways and report it.

    The rows are Gaussian directions (seeded, generated in float32 chunks); three queries in four are noisy
    copies of random rows (a clear nearest neighbour), the rest random directions. Queries are searched
    ``batch`` at a time (``batch=1``: one at a time). Each method runs once over all queries (a warm-up
    whose results give the recall), then ``repeats`` timed passes; the milliseconds per query are the median
    pass time divided by ``queries``. Methods: (a) numpy float32 ``matrix @ batch.T`` with ``argpartition``
    (the reference, see :func:`_numpy_top_k`), (b) faiss ``IndexFlatIP`` with its default settings (when
    importable), (c) :class:`ExactSearch`. Returns a dict with the times, recall@k of (b) and (c) against
    (a), the fallbacks and widened queries of (c) per pass over the queries, its build time, the memory of
    each representation, the ratios of this run and the machine. ``threads`` limits torch, faiss and numpy's
    BLAS (threadpoolctl); None uses their defaults. Nothing is asserted."""
    n, dim, queries, k = (_positive_int(v, name) for v, name in ((n, "n"), (dim, "dim"), (queries, "queries"), (k, "k")))
    batch, repeats = _positive_int(batch, "batch"), _positive_int(repeats, "repeats")
    k = min(k, n)
    rng = np.random.default_rng(seed)
    _progress(f"generating {n} x {dim} unit rows and {queries} queries (seed {seed})")
    matrix = _random_unit_matrix(n, dim, rng)
    query_matrix = _benchmark_queries(matrix, queries, rng)
    batches = [query_matrix[i:i + batch] for i in range(0, queries, batch)]
    report: dict[str, Any] = {"n": n, "dim": dim, "queries": queries, "k": k, "batch": batch, "seed": seed,
                              "repeats": repeats, "machine": machine_description(), "numpy": np.__version__}
    with _thread_limit(threads) as used:
        report["threads"] = used
        _progress("numpy float32 matrix @ queries.T + argpartition")
        numpy_ms, reference = _timed_ms_per_query(lambda b: _numpy_top_k(matrix, b, k), batches, repeats)
        _progress("faiss IndexFlatIP")
        faiss_result = _faiss_search(matrix, batches, k, repeats)
        _progress("building ExactSearch")
        start = time.perf_counter()
        index = ExactSearch(matrix)
        build_s = time.perf_counter() - start
        _progress("ExactSearch")
        ours_ms, found = _timed_ms_per_query(lambda b: index.search(b, k)[0], batches, repeats)
    fallbacks, widened = index.fallbacks, index.widened  # warm-up pass and timed passes
    passes = repeats + 1
    report["ms_per_query"] = {"numpy": numpy_ms, "faiss": faiss_result.get("ms"), "exact_search": ours_ms}
    report["recall_at_k"] = {"faiss": _recall(faiss_result["found"], reference) if faiss_result["available"] else None,
                             "exact_search": _recall(found, reference)}
    report["exact_search"] = {"coarse": index.coarse, "margin": index.margin, "build_s": build_s,
                              "fallbacks_per_pass": fallbacks / passes, "widened_per_pass": widened / passes,
                              "fallbacks_total": fallbacks, "passes": passes}
    report["faiss"] = {key: v for key, v in faiss_result.items() if key not in ("found", "ms", "nbytes")}
    report["memory_bytes"] = {"numpy_float32": int(matrix.nbytes), "faiss_flat": faiss_result.get("nbytes"),
                              "exact_search_total": index.nbytes, "exact_search_coarse_bf16": index.coarse_nbytes}
    report["ratios"] = {"faiss_ms_over_ours": faiss_result["ms"] / ours_ms if faiss_result["available"] else None,
                        "numpy_ms_over_ours": numpy_ms / ours_ms}
    _progress("done")
    return report


def search_table(reports: dict[str, dict[str, Any]]) -> Any:
    """One row per :func:`benchmark_search` report (labelled by the dict's keys): ms per query of each
    method, the recalls, and how many times slower faiss and numpy are than :class:`ExactSearch`."""
    import pandas as pd

    rows = []
    for label, r in reports.items():
        rows.append({"run": label, "rows": r["n"], "batch": r["batch"], "numpy ms": r["ms_per_query"]["numpy"],
                     "faiss ms": r["ms_per_query"]["faiss"], "ExactSearch ms": r["ms_per_query"]["exact_search"],
                     "faiss / ours": r["ratios"]["faiss_ms_over_ours"], "numpy / ours": r["ratios"]["numpy_ms_over_ours"],
                     "recall ours": r["recall_at_k"]["exact_search"], "recall faiss": r["recall_at_k"]["faiss"],
                     "fallbacks": r["exact_search"]["fallbacks_total"]})
    return pd.DataFrame(rows).set_index("run")
