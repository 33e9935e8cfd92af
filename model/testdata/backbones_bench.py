"""The four backbones in PyTorch, the baseline for BenchmarkBackboneStep.

Same shapes, same math and the same grouped routing as model/*.go with the
default BackboneConfig (rows grouped by scenario; towers and scenario parts
run on their own scenario's rows only), in two variants:

  idiomatic  as a PyTorch user writes them: nn.Modules, one nn.Linear per
             expert layer and per gate, experts joined with torch.stack.
  mirrored   op for op what the Go code runs: experts stacked (one Linear,
             then one baddbmm per layer), all scenarios' gates in one Linear
             with a gather of each row's own. The Go/mirrored ratio is the
             binding's per-op advantage alone.

One training step is forward, BCE with logits (mean), backward and an Adam
step (PyTorch defaults), as in the Go benchmark.

Usage: backbones_bench.py INTRA_OP_THREADS, then one request per stdin line:
    VARIANT NAME BATCH MIN_SECONDS
answered with "ms_per_step <float> steps <int>". The benchmark (cgo/pybench)
sets OPENBLAS_NUM_THREADS and GLIBC_TUNABLES as the Go side runs
(torch.SetCPUThreads, torch.TuneAllocator).
"""
import math
import sys
import time

import torch
import torch.nn.functional as F

IN_DIM = 128
SCENARIOS = 3
SHARES = (0.5, 0.3, 0.2)


def uniform(shape, fan_in):
    b = 1 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-b, b).requires_grad_()


class Linear:
    def __init__(self, i, o):
        self.w, self.b = uniform((o, i), i), uniform((o,), i)

    def params(self):
        return [self.w, self.b]

    def __call__(self, x):
        return F.linear(x, self.w, self.b)


class MLP:
    """Linear → ReLU blocks; no ReLU after the last layer unless out_act."""

    def __init__(self, i, hidden, out_act):
        self.layers, self.out_act = [], out_act
        for h in hidden:
            self.layers.append(Linear(i, h))
            i = h
        self.out = i

    def params(self):
        return [p for l in self.layers for p in l.params()]

    def __call__(self, x):
        for k, l in enumerate(self.layers):
            x = l(x)
            if self.out_act or k < len(self.layers) - 1:
                x = F.relu(x)
        return x


class Experts:
    """n experts on one input: layer 0 one Linear, later layers one baddbmm. Returns [n, B, out]."""

    def __init__(self, n, i, hidden):
        self.n, self.layers = n, []
        for h in hidden:
            self.layers.append((uniform((n, h, i), i), uniform((n, h), i), i, h))
            i = h
        self.out = i

    def params(self):
        return [p for w, b, _, _ in self.layers for p in (w, b)]

    def __call__(self, x):
        h = None
        for k, (w, b, i, o) in enumerate(self.layers):
            if k == 0:
                h = F.linear(x, w.view(self.n * o, i), b.view(self.n * o)).view(-1, self.n, o).transpose(0, 1)
            else:
                h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            h = F.relu(h)
        return h


def segments(counts):
    start = 0
    for s, n in enumerate(counts):
        if n > 0:
            yield s, start, n
        start += n


def each_segment(counts, dim, f):
    outs = [f(s, a, n) for s, a, n in segments(counts)]
    return outs[0] if len(outs) == 1 else torch.cat(outs, dim)


def mix(experts, gate):
    return (experts * gate.t().unsqueeze(2)).sum(0)


def pick(scen, t, k):
    b = scen.shape[0]
    return t.view(b, -1, k).gather(1, scen.view(b, 1, 1).expand(b, 1, k)).view(b, k)


class Towers:
    def __init__(self, i, hidden=(64, 32)):
        self.towers = [MLP(i, list(hidden) + [1], False) for _ in range(SCENARIOS)]

    def params(self):
        return [p for t in self.towers for p in t.params()]

    def __call__(self, counts, h):
        return each_segment(counts, 0, lambda s, a, n: self.towers[s](h.narrow(0, a, n))).view(-1)


class SharedBottom:
    def __init__(self):
        self.bottom = MLP(IN_DIM, [256, 128], True)
        self.towers = Towers(self.bottom.out)

    def params(self):
        return self.bottom.params() + self.towers.params()

    def __call__(self, x, scen, counts):
        return self.towers(counts, self.bottom(x))


class MMoE:
    def __init__(self, e=4):
        self.e = e
        self.experts = Experts(e, IN_DIM, [128, 64])
        self.gates = Linear(IN_DIM, SCENARIOS * e)
        self.towers = Towers(self.experts.out)

    def params(self):
        return self.experts.params() + self.gates.params() + self.towers.params()

    def __call__(self, x, scen, counts):
        gate = pick(scen, self.gates(x), self.e).softmax(1)
        return self.towers(counts, mix(self.experts(x), gate))


class PLE:
    def __init__(self, levels=2, ks=2, kc=2):
        self.k, self.levels, width = ks + kc, [], IN_DIM
        for l in range(levels):
            lv = {
                "specific": [Experts(ks, width, [128, 64]) for _ in range(SCENARIOS)],
                "shared": Experts(kc, width, [128, 64]),
                "gates": Linear(width, SCENARIOS * self.k),
                "shared_gate": Linear(width, self.k) if l < levels - 1 else None,
            }
            self.levels.append(lv)
            width = 64
        self.towers = Towers(width)

    def params(self):
        ps = []
        for lv in self.levels:
            for e in lv["specific"]:
                ps += e.params()
            ps += lv["shared"].params() + lv["gates"].params()
            if lv["shared_gate"] is not None:
                ps += lv["shared_gate"].params()
        return ps + self.towers.params()

    def __call__(self, x, scen, counts):
        a = c = x
        for lv in self.levels:
            spec = each_segment(counts, 1, lambda s, st, n: lv["specific"][s](a.narrow(0, st, n)))
            experts = torch.cat([spec, lv["shared"](c)], 0)
            nxt = mix(experts, pick(scen, lv["gates"](a), self.k).softmax(1))
            if lv["shared_gate"] is not None:
                c = mix(experts, lv["shared_gate"](c).softmax(1))
            a = nxt
        return self.towers(counts, a)


class STAR:
    def __init__(self, hidden=(128, 64), aux_hidden=(32,), emb=8):
        s, d = SCENARIOS, IN_DIM
        self.pn = [torch.ones(d).requires_grad_(), torch.zeros(d).requires_grad_(),
                   torch.ones(s, d).requires_grad_(), torch.zeros(s, d).requires_grad_()]
        self.rm, self.rv = torch.zeros(s, d), torch.ones(s, d)
        self.layers, i = [], d
        for h in list(hidden) + [1]:
            self.layers.append([uniform((h, i), i), uniform((h,), i),
                                torch.ones(s, h, i).requires_grad_(), torch.zeros(s, h).requires_grad_()])
            i = h
        self.emb = torch.randn(s, emb).requires_grad_()
        self.aux = MLP(d + emb, list(aux_hidden) + [1], False)

    def params(self):
        return self.pn + [p for l in self.layers for p in l] + [self.emb] + self.aux.params()

    def __call__(self, x, scen, counts):
        g, b, gs, bs = self.pn
        gamma, beta = gs * g, bs + b

        eff = [(sw * w, sb + bb) for w, bb, sw, sb in self.layers]

        def fc(s, a, n):
            # normalisation and layers in one pass per scenario, as model/star.go does
            h = F.batch_norm(x.narrow(0, a, n), self.rm[s], self.rv[s], gamma[s], beta[s], n > 1, 0.1, 1e-5)
            for k, (w, bb) in enumerate(eff):
                h = F.linear(h, w[s], bb[s])
                if k < len(eff) - 1:
                    h = F.relu(h)
            return h

        main = each_segment(counts, 0, fc)
        aux = self.aux(torch.cat([x, F.embedding(scen, self.emb)], 1))
        return main.add(aux).view(-1)


MIRRORED = {"shared_bottom": SharedBottom, "mmoe": MMoE, "ple": PLE, "star": STAR}


# ---------------------------------------------------------------- idiomatic
# The same models as a PyTorch user writes them (torch-rechub, DeepCTR-Torch
# style): nn.Modules, one nn.Linear per expert layer and per gate, experts
# joined with torch.stack; with the same grouped routing (towers and gates
# run on their own scenario's rows, nothing computed and masked).


def seq_mlp(i, hidden, out_act):
    layers = []
    for k, h in enumerate(hidden):
        layers.append(torch.nn.Linear(i, h))
        if out_act or k < len(hidden) - 1:
            layers.append(torch.nn.ReLU())
        i = h
    return torch.nn.Sequential(*layers)


class ITowers(torch.nn.Module):
    def __init__(self, i, hidden=(64, 32)):
        super().__init__()
        self.towers = torch.nn.ModuleList([seq_mlp(i, list(hidden) + [1], False) for _ in range(SCENARIOS)])

    def forward(self, counts, h):
        return each_segment(counts, 0, lambda s, a, n: self.towers[s](h.narrow(0, a, n))).view(-1)


class ISharedBottom(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bottom = seq_mlp(IN_DIM, [256, 128], True)
        self.towers = ITowers(128)

    def forward(self, x, scen, counts):
        return self.towers(counts, self.bottom(x))


def gated(experts, gate):
    """experts [n, E, h], gate logits [n, E] → [n, h]."""
    return (experts * gate.softmax(1).unsqueeze(-1)).sum(1)


class IMMoE(torch.nn.Module):
    def __init__(self, e=4):
        super().__init__()
        self.experts = torch.nn.ModuleList([seq_mlp(IN_DIM, [128, 64], True) for _ in range(e)])
        self.gates = torch.nn.ModuleList([torch.nn.Linear(IN_DIM, e) for _ in range(SCENARIOS)])
        self.towers = ITowers(64)

    def forward(self, x, scen, counts):
        experts = torch.stack([e(x) for e in self.experts], 1)  # [B, E, h]
        h = each_segment(counts, 0, lambda s, a, n: gated(experts.narrow(0, a, n), self.gates[s](x.narrow(0, a, n))))
        return self.towers(counts, h)


class IPLE(torch.nn.Module):
    def __init__(self, levels=2, ks=2, kc=2):
        super().__init__()
        k, width = ks + kc, IN_DIM
        self.levels = torch.nn.ModuleList()
        for l in range(levels):
            lv = torch.nn.Module()
            lv.specific = torch.nn.ModuleList([torch.nn.ModuleList([seq_mlp(width, [128, 64], True) for _ in range(ks)])
                                               for _ in range(SCENARIOS)])
            lv.shared = torch.nn.ModuleList([seq_mlp(width, [128, 64], True) for _ in range(kc)])
            lv.gates = torch.nn.ModuleList([torch.nn.Linear(width, k) for _ in range(SCENARIOS)])
            lv.shared_gate = torch.nn.Linear(width, k) if l < levels - 1 else None
            self.levels.append(lv)
            width = 64
        self.towers = ITowers(width)

    def forward(self, x, scen, counts):
        a = c = x
        for lv in self.levels:
            shared = [e(c) for e in lv.shared]
            new_a, new_c = [], []
            for s, st, n in segments(counts):
                a_s, c_s = a.narrow(0, st, n), c.narrow(0, st, n)
                experts = torch.stack([e(a_s) for e in lv.specific[s]] + [o.narrow(0, st, n) for o in shared], 1)
                new_a.append(gated(experts, lv.gates[s](a_s)))
                if lv.shared_gate is not None:
                    new_c.append(gated(experts, lv.shared_gate(c_s)))
            a = torch.cat(new_a, 0)
            if new_c:
                c = torch.cat(new_c, 0)
        return self.towers(counts, a)


class ISTAR(torch.nn.Module):
    def __init__(self, hidden=(128, 64), aux_hidden=(32,), emb=8):
        super().__init__()
        s, d = SCENARIOS, IN_DIM
        self.gamma, self.beta = torch.nn.Parameter(torch.ones(d)), torch.nn.Parameter(torch.zeros(d))
        self.gamma_s = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(d)) for _ in range(s)])
        self.beta_s = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(d)) for _ in range(s)])
        for k in range(s):
            self.register_buffer("rm%d" % k, torch.zeros(d))
            self.register_buffer("rv%d" % k, torch.ones(d))
        self.w, self.b, self.ws, self.bs = (torch.nn.ParameterList() for _ in range(4))
        i = d
        for h in list(hidden) + [1]:
            self.w.append(torch.nn.Parameter(uniform((h, i), i).detach()))
            self.b.append(torch.nn.Parameter(uniform((h,), i).detach()))
            self.ws.append(torch.nn.Parameter(torch.ones(s, h, i)))
            self.bs.append(torch.nn.Parameter(torch.zeros(s, h)))
            i = h
        self.emb = torch.nn.Embedding(s, emb)
        self.aux = seq_mlp(d + emb, list(aux_hidden) + [1], False)

    def forward(self, x, scen, counts):
        def fc(s, a, n):
            h = F.batch_norm(x.narrow(0, a, n), getattr(self, "rm%d" % s), getattr(self, "rv%d" % s),
                             self.gamma * self.gamma_s[s], self.beta + self.beta_s[s], n > 1, 0.1, 1e-5)
            for k in range(len(self.w)):
                h = F.linear(h, self.w[k] * self.ws[k][s], self.b[k] + self.bs[k][s])
                if k < len(self.w) - 1:
                    h = F.relu(h)
            return h

        main = each_segment(counts, 0, fc)
        return main.add(self.aux(torch.cat([x, self.emb(scen)], 1))).view(-1)


IDIOMATIC = {"shared_bottom": ISharedBottom, "mmoe": IMMoE, "ple": IPLE, "star": ISTAR}


def build(variant, name):
    if variant == "mirrored":
        m = MIRRORED[name]()
        return m, m.params()
    m = IDIOMATIC[name]()
    return m, list(m.parameters())


def counts_for(batch):
    c = [int(batch * p) for p in SHARES]
    c[0] += batch - sum(c)
    return c


def measure(variant, name, batch, min_seconds):
    torch.manual_seed(0)
    model, params = build(variant, name)
    opt = torch.optim.Adam(params, lr=1e-3)
    counts = counts_for(batch)
    scen = torch.cat([torch.full((n,), s, dtype=torch.int64) for s, n in enumerate(counts)])
    x = torch.randn(batch, IN_DIM)
    y = (torch.rand(batch) < 0.3).float()

    def step():
        logits = model(x, scen, counts)
        loss = F.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    steps, start = 0, time.perf_counter()
    while steps < 5 or time.perf_counter() - start < min_seconds:
        step()
        steps += 1
    return (time.perf_counter() - start) / steps * 1e3, steps


def main():
    torch.set_num_threads(int(sys.argv[1]))
    print("ready threads %d torch %s" % (torch.get_num_threads(), torch.__version__), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        variant, name, batch, min_seconds = line.split()
        ms, steps = measure(variant, name, int(batch), float(min_seconds))
        print("ms_per_step %.6f steps %d" % (ms, steps), flush=True)


if __name__ == "__main__":
    main()
