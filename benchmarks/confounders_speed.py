"""Speed of the confounder pipeline: spaCy parsing of QA pairs and mini-batch k-means.

    CRA_DATA_DIR=../shared/data python benchmarks/confounders_speed.py [--kmeans-qa 4000]

Parsing uses the real NExT-GQA val+test questions (their correct answers as the answers). The
k-means part clusters random graph vectors of the paper's shape (N_qa, 8*768) into 512 clusters,
so it measures only the clustering time, not a meaningful dictionary. Prints one line per result.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 256, 1024])
    parser.add_argument("--kmeans-qa", type=int, default=4000, help="graphs to cluster (NExT-QA train has 34,132)")
    parser.add_argument("--clusters", type=int, default=512)
    args = parser.parse_args()

    import torch

    from cra import paths
    from cra.confounders import cluster_graphs
    from cra.data import read_qa_csv
    from cra.text.semantic_graph import load_parser, measure_parse_throughput

    print(f"cpu threads: torch {torch.get_num_threads()}, os {os.cpu_count()}")
    pairs = [p for split in ("val", "test") for p in read_qa_csv(paths.data_file(f"nextgqa/{split}.csv")).qa_pairs()]
    nlp = load_parser()
    measure_parse_throughput(pairs[:200], nlp)  # warm-up
    for batch_size in args.batch_sizes:
        components, report = measure_parse_throughput(pairs, nlp, batch_size=batch_size)
        print(report)
    share = sum(bool(c.subject) for c in components) / len(components)
    print(f"share of QA pairs with a subject: {share:.3f}")

    rng = np.random.default_rng(0)
    node_emb = torch.from_numpy(rng.normal(size=(args.kmeans_qa, 8, 768)).astype(np.float32))
    start = time.perf_counter()
    cluster_graphs(node_emb, args.clusters, seed=43)
    print(
        f"mini-batch k-means: {args.kmeans_qa} graphs (8x768) -> {args.clusters} clusters in "
        f"{time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
