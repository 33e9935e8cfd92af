"""PyTorch DistributedDataParallel baseline for BenchmarkDataParallel.

Shared-Bottom as model/sharedbottom.go builds it by default: one embedding
table per categorical field (dim 16), concatenated with the numeric
features, a bottom MLP [256, 128] with ReLU, and per-scenario towers
[64, 32] -> 1 run on their own scenario's rows (rows grouped by scenario).
Trained one epoch with BCE with logits (mean) and Adam, wrapped in DDP over
Gloo, each rank taking a DistributedSampler shard of a seeded permutation.
The data have the shapes of msrtrain's (rows, vocabulary sizes, scenario
shares) with random ids and labels: throughput does not depend on the values.

Run by torchrun (--nproc_per_node 2 --no_python python3 ddp_bench.py ...):
    ddp_bench.py ROWS BATCH_PER_RANK SCENARIOS NUMERIC VOCAB,SIZES,... OUT
Rank 0 writes the global samples/s of the epoch's steps to OUT.
"""
import sys
import time

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

EMB = 16


class SharedBottom(torch.nn.Module):
    def __init__(self, vocabs, numeric, scenarios):
        super().__init__()
        self.emb = torch.nn.ModuleList(torch.nn.Embedding(v, EMB) for v in vocabs)
        width = EMB * len(vocabs) + numeric
        layers = []
        for h in (256, 128):
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU()]
            width = h
        self.bottom = torch.nn.Sequential(*layers)
        self.towers = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.Linear(width, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32),
                                torch.nn.ReLU(), torch.nn.Linear(32, 1))
            for _ in range(scenarios))

    def forward(self, cat, num, counts):
        x = torch.cat([e(cat[:, i]) for i, e in enumerate(self.emb)] + [num], 1)
        h = self.bottom(x)
        return torch.cat([t(part) for t, part in zip(self.towers, h.split(counts))]).squeeze(1)


def main():
    rows, batch, scenarios, numeric = (int(a) for a in sys.argv[1:5])
    vocabs = [int(v) for v in sys.argv[5].split(",")]
    out = sys.argv[6]
    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank, world = dist.get_rank(), dist.get_world_size()
    g = torch.Generator().manual_seed(1)
    cat = torch.stack([torch.randint(v, (rows,), generator=g) for v in vocabs], 1)
    num = torch.rand(rows, numeric, generator=g)
    scen = torch.multinomial(torch.tensor([0.5, 0.3, 0.2][:scenarios]), rows, replacement=True, generator=g)
    label = (torch.rand(rows, generator=g) < 0.3).float()
    torch.manual_seed(2)
    model = DDP(SharedBottom(vocabs, numeric, scenarios))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sampler = torch.utils.data.DistributedSampler(range(rows), num_replicas=world, rank=rank, shuffle=True, seed=1)
    order = torch.tensor(list(sampler))
    steps = 0
    dist.barrier()
    start = time.perf_counter()
    for lo in range(0, len(order), batch):
        idx = order[lo:lo + batch]
        s = scen[idx]
        idx = idx[s.argsort(stable=True)]  # rows grouped by scenario, as msrtrain's batches
        counts = torch.bincount(scen[idx], minlength=scenarios).tolist()
        logits = model(cat[idx], num[idx], counts)
        loss = F.binary_cross_entropy_with_logits(logits, label[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
    dist.barrier()
    seconds = time.perf_counter() - start
    if rank == 0:
        with open(out, "w") as f:
            f.write(f"{len(order) * world / seconds}\n")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
