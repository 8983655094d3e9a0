"""Gallery search benchmark: exact FAISS IndexFlatIP vs approximate HNSW, as the daemon builds them.

For galleries of 1k, 100k and 1M random unit vectors at the embedders' dimensions (128 dlib, 256
VGG16): build time, memory, search latency p50/p99 for one query and for a batch of 16, and HNSW's
recall@1 against the exact answer (queries are gallery vectors plus noise, like a new photo of an
enrolled face). FAISS runs with one OpenMP thread, as in the daemon (threads.faiss).

  .venv/bin/python -m bench.search            # 1k, 100k, 1M
  .venv/bin/python -m bench.search --quick    # 1k, 100k
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from bench.common import argument_parser, print_table
from edge_daemon.recognition.gallery import Gallery


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def latencies_ms(search, queries: np.ndarray, batch: int, repeats: int) -> np.ndarray:
    times = []
    for i in range(repeats):
        start = (i * batch) % (len(queries) - batch)
        chunk = queries[start : start + batch]
        begin = time.perf_counter()
        search(chunk)
        times.append((time.perf_counter() - begin) * 1000)
    return np.array(times)


def measure(size: int, dim: int, repeats: int, rng: np.random.Generator, approximate_up_to: int) -> list[dict]:
    vectors = unit(rng.standard_normal((size, dim), dtype=np.float32))
    picks = rng.integers(0, size, 512)
    queries = unit(vectors[picks] + 0.05 * rng.standard_normal((512, dim), dtype=np.float32))
    rows = []
    truth = None
    kinds = (("flat", None), ("hnsw", 1)) if size <= approximate_up_to else (("flat", None),)
    for kind, approximate_from in kinds:
        gallery = Gallery("bench", "v", dim, 0.5, "bench")
        gallery.vectors = vectors
        gallery.labels = [str(i) for i in range(size)]
        gallery.sources = gallery.labels
        started = time.perf_counter()
        gallery.use_approximate_index(approximate_from)
        build_s = time.perf_counter() - started
        index = gallery._index
        search = lambda q: index.search(q, 1)  # noqa: E731
        answers = index.search(queries, 1)[1][:, 0]
        if truth is None:
            truth = answers
        one = latencies_ms(search, queries, 1, repeats)
        batched = latencies_ms(search, queries, 16, max(20, repeats // 10))
        index_mib = (size * dim * 4 + (size * 32 * 2 * 4 if kind == "hnsw" else 0)) / 2**20
        rows.append(
            {
                "size": size,
                "dim": dim,
                "index": kind,
                "build_s": round(build_s, 2),
                "memory_mib": round(index_mib, 1),
                "p50_ms": round(float(np.percentile(one, 50)), 3),
                "p99_ms": round(float(np.percentile(one, 99)), 3),
                "batch16_p50_ms": round(float(np.percentile(batched, 50)), 3),
                "recall_at_1": round(float((answers == truth).mean()), 4),
                "right_answer": round(float((answers == picks).mean()), 4),
            }
        )
    return rows


def main() -> int:
    parser = argument_parser(__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--dims", type=int, nargs="+", default=[128, 256])
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--approximate-up-to", type=int, default=200_000,
                        help="build HNSW only up to this size (1M vectors take over 10 minutes to insert on 2 cores)")
    parser.add_argument("--quick", action="store_true", help="1k and 100k, fewer repeats")
    args = parser.parse_args()
    sizes = [1_000, 100_000] if args.quick else args.sizes
    repeats = 200 if args.quick else args.repeats
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(0)
    rows = [row for size in sizes for dim in args.dims for row in measure(size, dim, repeats, rng, args.approximate_up_to)]
    print_table(rows, 14)
    for size in sizes:
        for dim in args.dims:
            pair = {r["index"]: r for r in rows if r["size"] == size and r["dim"] == dim}
            if "hnsw" not in pair:
                continue
            flat, hnsw = pair["flat"], pair["hnsw"]
            print(f"{size:>9} x {dim}: HNSW p99 is {flat['p99_ms'] / max(hnsw['p99_ms'], 1e-6):.1f}x faster than exact, recall@1 {hnsw['recall_at_1']:.4f}")
    if args.json:
        print(json.dumps({"runs": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
