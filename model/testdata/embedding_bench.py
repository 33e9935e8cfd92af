"""PyTorch baseline for BenchmarkEmbeddingStep (model/embedding_bench_test.go).

One process per (backbone, table rows, variant), as the Go side runs one
worker per configuration, so that each reports its own peak resident memory.
The model is what msrtrain builds with model.meta.levels=none: one embedding
table of ROWS x 16 split evenly over 8 fields (field f's ids start at
f*ROWS/8), the 8 lookups concatenated into 128 inputs of the backbone
(backbones_bench.py's idiomatic STAR or MMoE), BCE with logits. Each step's
ids are uniform over every field's rows, from a fixed pool of batches, so
about every lookup is a distinct row at 1M and 10M rows: the worst case for
a sparse update.

  sparse  nn.Embedding(sparse=True) + torch.optim.SparseAdam for the table,
          Adam for the backbone (PyTorch's recipe for large tables)
  dense   nn.Embedding + one Adam for everything (msrtrain's old behaviour)

Usage: embedding_bench.py INTRA_OP_THREADS BACKBONE ROWS BATCH VARIANT, then
one request per stdin line: MIN_SECONDS, answered with
"ms_per_step <float> steps <int> peak_rss_mb <float>".
"""
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from backbones_bench import IDIOMATIC, counts_for  # noqa: E402

FIELDS, DIM, POOL = 8, 16, 16


def main():
    torch.set_num_threads(int(sys.argv[1]))
    name, rows, batch, variant = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    torch.manual_seed(0)
    per_field = rows // FIELDS
    emb = torch.nn.Embedding(per_field * FIELDS, DIM, sparse=variant == "sparse")
    torch.nn.init.normal_(emb.weight, 0, 0.01)
    backbone = IDIOMATIC[name]()
    if variant == "sparse":
        opts = [torch.optim.SparseAdam([emb.weight], lr=1e-3), torch.optim.Adam(backbone.parameters(), lr=1e-3)]
    else:
        opts = [torch.optim.Adam(list(emb.parameters()) + list(backbone.parameters()), lr=1e-3)]
    counts = counts_for(batch)
    scen = torch.cat([torch.full((n,), s, dtype=torch.int64) for s, n in enumerate(counts)])
    offsets = torch.arange(FIELDS, dtype=torch.int64) * per_field
    pool = [torch.randint(0, per_field, (batch, FIELDS)) + offsets for _ in range(POOL)]
    y = (torch.rand(batch) < 0.3).float()
    k = [0]

    def step():
        ids = pool[k[0] % POOL]
        k[0] += 1
        x = emb(ids).view(batch, FIELDS * DIM)
        loss = F.binary_cross_entropy_with_logits(backbone(x, scen, counts), y)
        for o in opts:
            o.zero_grad(set_to_none=True)
        loss.backward()
        for o in opts:
            o.step()

    for _ in range(3):
        step()
    print("ready %s %d rows %s, threads %d, torch %s" % (name, rows, variant, torch.get_num_threads(), torch.__version__), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        min_seconds = float(line)
        steps, start = 0, time.perf_counter()
        while steps < 5 or time.perf_counter() - start < min_seconds:
            step()
            steps += 1
        ms = (time.perf_counter() - start) / steps * 1e3
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print("ms_per_step %.6f steps %d peak_rss_mb %.1f" % (ms, steps, rss), flush=True)


if __name__ == "__main__":
    main()
