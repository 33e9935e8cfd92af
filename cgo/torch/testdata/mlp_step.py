"""One MLP training step in PyTorch, the baseline for BenchmarkMLPStep.

Usage: mlp_step.py INTRA_OP_THREADS WARMUP
The benchmark (cgo/pybench) sets OPENBLAS_NUM_THREADS and GLIBC_TUNABLES as
the Go side runs (torch.SetCPUThreads, torch.TuneAllocator). After WARMUP steps it
prints "ready", then for every line N read from stdin times N steps and
prints "ms_per_step <float>", so that the benchmark can alternate Go and
Python rounds on the same machine.
The model, data and step mirror mlpStep in cgo/bench_test.go: batch 2048,
256 -> 256 -> 128 -> 1 with ReLU, BCE with logits (mean), Adam (PyTorch defaults).
"""
import sys
import time

import torch
import torch.nn.functional as F


def main():
    threads, warmup = (int(a) for a in sys.argv[1:3])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    batch, sizes = 2048, [256, 256, 128, 1]
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        w = torch.empty(fan_out, fan_in)
        torch.nn.init.kaiming_uniform_(w, a=5 ** 0.5)
        b = torch.empty(fan_out).uniform_(-1 / fan_in ** 0.5, 1 / fan_in ** 0.5)
        params += [w.requires_grad_(), b.requires_grad_()]
    x = torch.randn(batch, sizes[0])
    y = (torch.rand(batch, 1) < 0.3).float()
    opt = torch.optim.Adam(params, lr=1e-3)

    def step():
        opt.zero_grad(set_to_none=True)
        h = x
        for i in range(0, len(params), 2):
            h = F.linear(h, params[i], params[i + 1])
            if i + 2 < len(params):
                h = F.relu(h)
        loss = F.binary_cross_entropy_with_logits(h, y)
        loss.backward()
        opt.step()
        return loss

    for _ in range(warmup):
        step()
    print("ready threads=%d" % torch.get_num_threads(), flush=True)
    for line in sys.stdin:
        steps = int(line)
        start = time.perf_counter()
        for _ in range(steps):
            step()
        elapsed = time.perf_counter() - start
        print("ms_per_step %.6f" % (elapsed / steps * 1e3), flush=True)


if __name__ == "__main__":
    main()
