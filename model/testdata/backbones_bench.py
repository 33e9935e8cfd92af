"""The backbones in PyTorch, the baseline for BenchmarkBackboneStep.

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

With MSR_BENCH_DEVICE=cuda (BenchmarkGPUThroughput) everything runs on the
GPU (torch.set_default_device, PyTorch 2.x) and each step ends with a
synchronize, as the Go side's does.

Usage: backbones_bench.py INTRA_OP_THREADS, then one request per stdin line:
    VARIANT NAME BATCH MIN_SECONDS
answered with "ms_per_step <float> steps <int>". The benchmark (cgo/pybench)
sets OPENBLAS_NUM_THREADS and GLIBC_TUNABLES as the Go side runs
(torch.SetCPUThreads, torch.TuneAllocator).
"""
import math
import os
import sys
import time

import torch
import torch.nn.functional as F

IN_DIM = 128
SCENARIOS = 3
SHARES = (0.5, 0.3, 0.2)
DEVICE = os.environ.get("MSR_BENCH_DEVICE", "cpu")


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

    def __init__(self, n, i, hidden, act=F.relu):
        self.n, self.layers, self.act = n, [], act
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
            h = self.act(h)
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
                # the paper's shared gate: every scenario's experts and the shared ones
                "shared_gate": Linear(width, SCENARIOS * ks + kc) if l < levels - 1 else None,
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
        # as model/ple.go: every scenario's path while a later shared gate reads them, then each row's own
        paths, own, c, k = None, x, x, self.k
        for l, lv in enumerate(self.levels):
            if lv["shared_gate"] is None:
                spec = each_segment(counts, 1, lambda s, st, n: lv["specific"][s](own.narrow(0, st, n)))
                experts = torch.cat([spec, lv["shared"](c)], 0)
                own = mix(experts, pick(scen, lv["gates"](own), k).softmax(1))
                continue
            path = [x] * SCENARIOS if paths is None else paths
            specific = [lv["specific"][t](path[t]) for t in range(SCENARIOS)]
            shared = lv["shared"](c)
            next_c = mix(torch.cat(specific + [shared], 0), lv["shared_gate"](c).softmax(1))
            if l + 1 < len(self.levels) - 1:
                w, b = lv["gates"].w, lv["gates"].b
                paths = [mix(torch.cat([specific[t], shared], 0),
                             F.linear(path[t], w.narrow(0, t * k, k), b.narrow(0, t * k, k)).softmax(1))
                         for t in range(SCENARIOS)]
            else:
                if paths is not None:
                    own = each_segment(counts, 0, lambda s, st, n: paths[s].narrow(0, st, n))
                mine = each_segment(counts, 1, lambda s, st, n: specific[s].narrow(1, st, n))
                own = mix(torch.cat([mine, shared], 0), pick(scen, lv["gates"](own), k).softmax(1))
            c = next_c
        return self.towers(counts, own)


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
    """As Scenario-Wise-Rec writes it: every row carries every scenario's path and the shared one."""

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
            lv.shared_gate = torch.nn.Linear(width, SCENARIOS * ks + kc) if l < levels - 1 else None
            self.levels.append(lv)
            width = 64
        self.towers = ITowers(width)

    def forward(self, x, scen, counts):
        paths, c = [x] * SCENARIOS, x
        for lv in self.levels:
            specific = [[e(paths[s]) for e in lv.specific[s]] for s in range(SCENARIOS)]
            shared = [e(c) for e in lv.shared]
            paths = [gated(torch.stack(specific[s] + shared, 1), lv.gates[s](paths[s])) for s in range(SCENARIOS)]
            if lv.shared_gate is not None:
                c = gated(torch.stack([o for sp in specific for o in sp] + shared, 1), lv.shared_gate(c))
        return self.towers(counts, each_segment(counts, 0, lambda s, a, n: paths[s].narrow(0, a, n)))


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

# ------------------------------------------- SAR-Net, M2M, AdaptDHM, M3oE
# Mirrored (op for op as model/sarnet.go, m2m.go, adaptdhm.go, m3oe.go) and
# idiomatic (nn.Modules, one module per expert, per-scenario ModuleLists and
# loops, as Scenario-Wise-Rec writes them), both with grouped routing.


def identity(x):
    return x


def unit_rows(c):
    return c / c.norm(dim=1, keepdim=True).clamp_min(1e-12)


def star_params(i, h, parts):
    return [uniform((h, i), i), uniform((h,), i), torch.ones(parts, h, i).requires_grad_(),
            torch.zeros(parts, h).requires_grad_()]


class SARNet:
    def __init__(self, shared=8, specific=2, expert=(16,), tower=(32, 32)):
        s, d = SCENARIOS, IN_DIM
        self.w, self.b = torch.ones(s, d).requires_grad_(), torch.zeros(s, d).requires_grad_()
        self.shared = Experts(shared, d, expert, identity)
        self.specific = [Experts(specific, d, expert, identity) for _ in range(s)]
        self.gate = Linear(d, shared + specific)
        self.tower = MLP(self.shared.out, list(tower) + [1], False)

    def params(self):
        return ([self.w, self.b] + self.shared.params() + [p for e in self.specific for p in e.params()] +
                self.gate.params() + self.tower.params())

    def __call__(self, x, scen, counts):
        x = x * F.embedding(scen, self.w) + F.embedding(scen, self.b)
        spec = each_segment(counts, 1, lambda s, a, n: self.specific[s](x.narrow(0, a, n)))
        experts = torch.cat([self.shared(x), spec], 0)
        return self.tower(mix(experts, self.gate(x).softmax(1))).view(-1)


class M2M:
    def __init__(self, layers=2, ff=16, k=4, h=16, e=16, tower_layers=1, out=(64, 32)):
        s, d = SCENARIOS, IN_DIM
        self.d, self.h = d, h
        self.enc = [dict(v=Linear(d, d), o=Linear(d, d), f1=Linear(d, ff), f2=Linear(ff, d),
                         n1=[torch.ones(d).requires_grad_(), torch.zeros(d).requires_grad_()],
                         n2=[torch.ones(d).requires_grad_(), torch.zeros(d).requires_grad_()]) for _ in range(layers)]
        self.experts = Experts(k, d, [h], F.leaky_relu)
        self.semb, self.temb = torch.randn(s, e).requires_grad_(), torch.randn(1, e).requires_grad_()
        self.sk, self.tk = Linear(e, h), Linear(e, h)
        self.aw, self.ab, self.v = Linear(h, 4 * h * h), Linear(h, 2 * h), torch.ones(2 * h).requires_grad_()
        self.tw = [(Linear(h, h * h), Linear(h, h)) for _ in range(tower_layers)]
        self.out = MLP(h, list(out) + [1], False)

    def params(self):
        ps = []
        for l in self.enc:
            ps += l["v"].params() + l["o"].params() + l["f1"].params() + l["f2"].params() + l["n1"] + l["n2"]
        ps += self.experts.params() + [self.semb, self.temb] + self.sk.params() + self.tk.params()
        ps += self.aw.params() + self.ab.params() + [self.v]
        for w, b in self.tw:
            ps += w.params() + b.params()
        return ps + self.out.params()

    def __call__(self, x, scen, counts):
        u, h = x, self.h
        for l in self.enc:
            t = F.layer_norm(u + l["o"](l["v"](u)), (self.d,), *l["n1"])
            u = F.layer_norm(t + l["f2"](F.relu(l["f1"](t))), (self.d,), *l["n2"])
        ex = self.experts(u)
        sc = F.leaky_relu(self.sk(self.semb))
        task = F.leaky_relu(self.tk(self.temb)).view(-1)
        att_w = self.aw(sc).view(-1, 2 * h, 2 * h)
        expert_w = att_w.narrow(1, 0, h)
        task_term = task.matmul(att_w.narrow(1, h, h)) + self.ab(sc)
        towers = [(w(sc).view(-1, h, h), b(sc)) for w, b in self.tw]

        def seg(s, a, n):
            e = ex.narrow(1, a, n)
            score = F.leaky_relu(e.matmul(expert_w[s]) + task_term[s]).matmul(self.v)
            o = mix(e, score.softmax(0).t())
            for w, b in towers:
                o = F.leaky_relu(o.matmul(w[s]) + b[s] + o)
            return o

        return self.out(each_segment(counts, 0, seg)).view(-1)


class AdaptDHM:
    def __init__(self, hidden=(64, 64), k=3, beta=0.9, iters=3, e=16):
        self.k, self.beta, self.iters = k, beta, iters
        self.emb = torch.randn(SCENARIOS, e).requires_grad_()
        i = IN_DIM + e
        self.centers = torch.randn(k, i)
        self.layers = []
        for h in list(hidden) + [1]:
            self.layers.append(star_params(i, h, k))
            i = h

    def params(self):
        return [self.emb] + [p for l in self.layers for p in l]

    def net(self, k, h):
        for j, (w, b, kw, kb) in enumerate(self.layers):
            h = F.linear(h, w * kw[k], b + kb[k])
            if j < len(self.layers) - 1:
                h = F.relu(h)
        return h

    def __call__(self, x, scen, counts):
        z = torch.cat([x, F.embedding(scen, self.emb)], 1)
        with torch.no_grad():
            zd = z.detach()
            for _ in range(self.iters):
                c = unit_rows(self.centers)
                r = (zd @ c.t()).softmax(1)
                routed = (r.t() @ zd) / r.sum(0).unsqueeze(1).clamp_min(1e-12)  # the routed mean
                self.centers.copy_(unit_rows(self.beta * c + (1 - self.beta) * routed))
            assign = (zd @ unit_rows(self.centers).t()).argmax(1).tolist()
        rows = [[] for _ in range(self.k)]
        for i, k in enumerate(assign):
            rows[k].append(i)
        outs, order = [], []
        for k, r in enumerate(rows):
            if not r:
                continue
            if len(r) == len(assign):
                return self.net(k, z).view(-1)
            outs.append(self.net(k, z.index_select(0, torch.tensor(r))))
            order += r
        back = [0] * len(order)
        for pos, row in enumerate(order):
            back[row] = pos
        return torch.cat(outs, 0).index_select(0, torch.tensor(back)).view(-1)


class M3oE:
    def __init__(self, bottom=(128, 64), k=4, expert=(32,), tower=(32,)):
        s, d = SCENARIOS, IN_DIM
        self.k = k
        self.star = star_params(d, bottom[0], s)
        self.bottom = MLP(bottom[0], list(bottom[1:]), True)
        self.skip = MLP(d, [bottom[-1]], True)
        self.experts = Experts(k + s + 1, bottom[-1], expert)
        self.gates = Linear(bottom[-1], s * k)
        self.balance, self.dw, self.tw = (torch.ones(1).requires_grad_() for _ in range(3))
        self.towers = Towers(self.experts.out, tower)

    def params(self):
        return (self.star + self.bottom.params() + self.skip.params() + self.experts.params() + self.gates.params() +
                [self.balance, self.dw, self.tw] + self.towers.params())

    def __call__(self, x, scen, counts):
        s_n, k = SCENARIOS, self.k
        w, b, sw, sb = self.star
        ew, eb = sw * w, sb + b
        star = each_segment(counts, 0, lambda s, a, n: F.linear(x.narrow(0, a, n), ew[s], eb[s]))
        z = self.bottom(star) + self.skip(x)
        ex = self.experts(z)
        shared = mix(ex.narrow(0, 0, k), pick(scen, self.gates(z), k).softmax(1))
        domains = ex.narrow(0, k, s_n)
        beta = self.balance.sigmoid()
        own = each_segment(counts, 0, lambda s, a, n: domains[s].narrow(0, a, n))
        c = (1 - beta) / (s_n - 1)
        balanced = own * (beta - c) + domains.sum(0) * c
        f = shared + balanced * self.dw.sigmoid() + ex[k + s_n] * self.tw.sigmoid()
        return self.towers(counts, f)


class ISARNet(torch.nn.Module):
    def __init__(self, shared=8, specific=2, h=16, tower=(32, 32)):
        super().__init__()
        s, d = SCENARIOS, IN_DIM
        self.w = torch.nn.Embedding(s, d)
        self.b = torch.nn.Embedding(s, d)
        torch.nn.init.ones_(self.w.weight)
        torch.nn.init.zeros_(self.b.weight)
        self.shared = torch.nn.ModuleList([torch.nn.Linear(d, h) for _ in range(shared)])
        self.specific = torch.nn.ModuleList([torch.nn.ModuleList([torch.nn.Linear(d, h) for _ in range(specific)])
                                             for _ in range(s)])
        self.gate = torch.nn.Linear(d, shared + specific)
        self.tower = seq_mlp(h, list(tower) + [1], False)

    def forward(self, x, scen, counts):
        x = x * self.w(scen) + self.b(scen)
        shared = torch.stack([e(x) for e in self.shared], 1)  # [B, Kc, h]
        h = each_segment(counts, 0, lambda s, a, n: gated(
            torch.cat([shared.narrow(0, a, n), torch.stack([e(x.narrow(0, a, n)) for e in self.specific[s]], 1)], 1),
            self.gate(x.narrow(0, a, n))))
        return self.tower(h).view(-1)


class IM2M(torch.nn.Module):
    def __init__(self, layers=2, ff=16, k=4, h=16, e=16, tower_layers=1, out=(64, 32)):
        super().__init__()
        d = IN_DIM
        self.h = h
        # A sequence of one token, as model/m2m.go: PyTorch still computes the query and key projections.
        self.encoder = torch.nn.TransformerEncoder(
            torch.nn.TransformerEncoderLayer(d, 4, dim_feedforward=ff, dropout=0.0), layers, enable_nested_tensor=False)
        self.experts = torch.nn.ModuleList([torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.LeakyReLU())
                                            for _ in range(k)])
        self.scenario_emb, self.task_emb = torch.nn.Embedding(SCENARIOS, e), torch.nn.Embedding(1, e)
        self.scenario_mlp = torch.nn.Sequential(torch.nn.Linear(e, h), torch.nn.LeakyReLU())
        self.task_mlp = torch.nn.Sequential(torch.nn.Linear(e, h), torch.nn.LeakyReLU())
        self.att_w, self.att_b = torch.nn.Linear(h, 4 * h * h), torch.nn.Linear(h, 2 * h)
        self.v = torch.nn.Parameter(torch.ones(2 * h, 1))
        self.tower_w = torch.nn.ModuleList([torch.nn.Linear(h, h * h) for _ in range(tower_layers)])
        self.tower_b = torch.nn.ModuleList([torch.nn.Linear(h, h) for _ in range(tower_layers)])
        self.out = seq_mlp(h, list(out) + [1], False)

    def forward(self, x, scen, counts):
        h = self.h
        u = self.encoder(x.unsqueeze(0)).squeeze(0)
        experts = [e(u) for e in self.experts]
        task = self.task_mlp(self.task_emb.weight)  # [1, h]

        def seg(s, a, n):
            es = self.scenario_mlp(self.scenario_emb.weight[s:s + 1])  # [1, h]
            w, b = self.att_w(es).view(2 * h, 2 * h), self.att_b(es)
            ex = [e.narrow(0, a, n) for e in experts]
            scores = torch.cat([F.leaky_relu(torch.cat([e, task.expand(n, -1)], 1) @ w + b) @ self.v for e in ex], 1)
            alpha = scores.softmax(1)
            o = sum(alpha[:, j:j + 1] * e for j, e in enumerate(ex))
            for tw, tb in zip(self.tower_w, self.tower_b):
                o = F.leaky_relu(o @ tw(es).view(h, h) + tb(es) + o)
            return o

        return self.out(each_segment(counts, 0, seg)).view(-1)


class IAdaptDHM(torch.nn.Module):
    def __init__(self, hidden=(64, 64), k=3, beta=0.9, iters=3, e=16):
        super().__init__()
        self.k, self.beta, self.iters = k, beta, iters
        self.emb = torch.nn.Embedding(SCENARIOS, e)
        dims = [IN_DIM + e] + list(hidden) + [1]
        self.register_buffer("centers", F.normalize(torch.randn(k, dims[0]), dim=1))
        self.w = torch.nn.ParameterList([torch.nn.Parameter(uniform((o, i), i).detach()) for i, o in zip(dims, dims[1:])])
        self.b = torch.nn.ParameterList([torch.nn.Parameter(uniform((o,), i).detach()) for i, o in zip(dims, dims[1:])])
        self.kw = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(k, o, i)) for i, o in zip(dims, dims[1:])])
        self.kb = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(k, o)) for i, o in zip(dims, dims[1:])])

    def forward(self, x, scen, counts):
        z = torch.cat([x, self.emb(scen)], 1)
        with torch.no_grad():
            zd = z.detach()
            for _ in range(self.iters):
                r = (zd @ self.centers.t()).softmax(1)
                routed = (r.t() @ zd) / r.sum(0).unsqueeze(1).clamp_min(1e-12)  # the routed mean
                self.centers = F.normalize(self.beta * self.centers + (1 - self.beta) * routed, dim=1)
            assign = (zd @ self.centers.t()).argmax(1)
        order = assign.argsort()
        sizes = torch.bincount(assign, minlength=self.k).tolist()
        outs, start = [], 0
        for k, n in enumerate(sizes):
            if n == 0:
                continue
            h = z.index_select(0, order.narrow(0, start, n))
            for j in range(len(self.w)):
                h = F.linear(h, self.w[j] * self.kw[j][k], self.b[j] + self.kb[j][k])
                if j < len(self.w) - 1:
                    h = F.relu(h)
            outs.append(h)
            start += n
        out = torch.empty(z.shape[0], 1).index_copy(0, order, torch.cat(outs, 0))
        return out.view(-1)


class IM3oE(torch.nn.Module):
    def __init__(self, bottom=(128, 64), k=4, expert=(32,), tower=(32,)):
        super().__init__()
        s, d = SCENARIOS, IN_DIM
        self.shared_w = torch.nn.Parameter(uniform((bottom[0], d), d).detach())
        self.shared_b = torch.nn.Parameter(uniform((bottom[0],), d).detach())
        self.slot_w = torch.nn.ParameterList([torch.nn.Parameter(torch.ones(bottom[0], d)) for _ in range(s)])
        self.slot_b = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(bottom[0])) for _ in range(s)])
        self.star_mlp = seq_mlp(bottom[0], list(bottom[1:]), True)
        self.skip = seq_mlp(d, [bottom[-1]], True)
        self.experts = torch.nn.ModuleList([seq_mlp(bottom[-1], list(expert), True) for _ in range(k)])
        self.domain_experts = torch.nn.ModuleList([seq_mlp(bottom[-1], list(expert), True) for _ in range(s)])
        self.task_expert = seq_mlp(bottom[-1], list(expert), True)
        self.gates = torch.nn.ModuleList([torch.nn.Linear(bottom[-1], k) for _ in range(s)])
        self.balance, self.dw, self.tw = (torch.nn.Parameter(torch.ones(1)) for _ in range(3))
        self.towers = ITowers(expert[-1], tower)

    def forward(self, x, scen, counts):
        star = each_segment(counts, 0, lambda s, a, n: F.linear(
            x.narrow(0, a, n), self.shared_w * self.slot_w[s], self.shared_b + self.slot_b[s]))
        z = self.star_mlp(star) + self.skip(x)
        shared = torch.stack([e(z) for e in self.experts], 1)
        domains = [e(z) for e in self.domain_experts]
        task = self.task_expert(z)
        beta = self.balance.sigmoid()

        def seg(s, a, n):
            bal = beta * domains[s].narrow(0, a, n)
            for j, dom in enumerate(domains):
                if j != s:
                    bal = bal + (1 - beta) / (len(domains) - 1) * dom.narrow(0, a, n)
            return (gated(shared.narrow(0, a, n), self.gates[s](z.narrow(0, a, n))) + bal * self.dw.sigmoid() +
                    task.narrow(0, a, n) * self.tw.sigmoid())

        return self.towers(counts, each_segment(counts, 0, seg))


MIRRORED.update({"sarnet": SARNet, "m2m": M2M, "adaptdhm": AdaptDHM, "m3oe": M3oE})
IDIOMATIC.update({"sarnet": ISARNet, "m2m": IM2M, "adaptdhm": IAdaptDHM, "m3oe": IM3oE})


# ------------------------------------------- EPNet, PPNet, AdaSparse, HAMUR
# As Scenario-Wise-Rec's users write them (scenario_wise_rec/models/multi_domain:
# GateNU as an nn.Sequential, one ModuleList entry per domain), with the same
# math as model/{epnet,ppnet,adasparse,hamur}.go at their defaults and the
# same grouped routing. The Go code runs this structure op for op, so the
# idiomatic and mirrored variants are the same classes. The input is 8
# fields × 16 values; the user and item ids are its first two fields.

ID_WIDTH = 2 * 16


class GateNU(torch.nn.Module):
    def __init__(self, i, o, gamma=2.0):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(i, o), torch.nn.ReLU(), torch.nn.Linear(o, o), torch.nn.Sigmoid())
        self.gamma = gamma

    def forward(self, x):
        return self.net(x) * self.gamma


class IEPNet(torch.nn.Module):
    def __init__(self, emb=16, hidden=(128, 64, 32)):
        super().__init__()
        self.emb = torch.nn.Embedding(SCENARIOS, emb)
        self.gate = GateNU(emb + IN_DIM, IN_DIM)
        self.tower = seq_mlp(IN_DIM, list(hidden) + [1], False)

    def forward(self, x, scen, counts):
        delta = self.gate(torch.cat([self.emb(scen), x.detach()], 1))
        return self.tower(x * delta).view(-1)


class PPTower(torch.nn.Module):
    def __init__(self, gate_in, hidden):
        super().__init__()
        self.layers, self.gates, i = torch.nn.ModuleList(), torch.nn.ModuleList(), IN_DIM
        for h in hidden:
            self.gates.append(GateNU(gate_in, i))
            self.layers.append(torch.nn.Sequential(torch.nn.Linear(i, h), torch.nn.ReLU()))
            i = h
        self.gates.append(GateNU(gate_in, i))
        self.out = torch.nn.Linear(i, 1)

    def forward(self, h, g):
        for layer, gate in zip(self.layers, self.gates):
            h = layer(gate(g) * h)
        return self.out(self.gates[-1](g) * h)


class IPPNet(torch.nn.Module):
    def __init__(self, hidden=(128, 64, 32)):
        super().__init__()
        self.towers = torch.nn.ModuleList([PPTower(ID_WIDTH + IN_DIM, hidden) for _ in range(SCENARIOS)])

    def forward(self, x, scen, counts):
        g = torch.cat([x[:, :ID_WIDTH], x.detach()], 1)
        return each_segment(counts, 0, lambda s, a, n: self.towers[s](x.narrow(0, a, n), g.narrow(0, a, n))).view(-1)


class IAdaSparse(torch.nn.Module):
    def __init__(self, emb=16, hidden=(32, 32), eps=1e-2, beta=2.0, alpha=1.0, delta=1e-4, dropout=0.2):
        super().__init__()
        self.emb = torch.nn.Embedding(SCENARIOS, emb)
        self.eps, self.beta, self.delta = eps, beta, delta
        self.register_buffer("alpha", torch.tensor([alpha]))
        self.pruners = torch.nn.ModuleList([torch.nn.Linear(emb + IN_DIM, IN_DIM, bias=False)])
        self.layers, i = torch.nn.ModuleList(), emb + IN_DIM
        for h in hidden:
            self.layers.append(torch.nn.Sequential(torch.nn.Linear(i, h), torch.nn.ReLU(), torch.nn.Dropout(dropout)))
            self.pruners.append(torch.nn.Linear(emb + h, h, bias=False))
            i = h
        self.out = torch.nn.Linear(i, 1)

    def prune(self, l, d, h, alpha):
        g = self.beta * torch.sigmoid(self.pruners[l](torch.cat([d, h], 1)) * alpha)  # fusion
        return g * (g >= self.eps).float() * h

    def forward(self, x, scen, counts):
        d, alpha = self.emb(scen), self.alpha.clone()
        z = torch.cat([d, self.prune(0, d, x, alpha)], 1)
        for l, layer in enumerate(self.layers):
            z = self.prune(l + 1, d, layer(z), alpha)
        if self.training:
            with torch.no_grad():
                self.alpha += self.delta
        return self.out(z).view(-1)


class IHAMUR(torch.nn.Module):
    def __init__(self, hidden=(256, 128), hyper=(64,), k=35, a=32):
        super().__init__()
        d, self.k = hidden[-1], k
        self.networks = torch.nn.ModuleList([seq_mlp(IN_DIM, list(hidden), True) for _ in range(SCENARIOS)])
        self.outs = torch.nn.ModuleList([torch.nn.Linear(d, 1) for _ in range(SCENARIOS)])
        self.hyper = torch.nn.Sequential(seq_mlp(IN_DIM, list(hyper), True), torch.nn.Linear(hyper[-1], k * k))

        def stack(*shape, fan_in=None):
            t = torch.empty(SCENARIOS, *shape)
            if fan_in is None:
                return torch.nn.Parameter(t.zero_())
            return torch.nn.Parameter(t.uniform_(-1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in)))

        self.down_u, self.down_v, self.down_b = stack(d, k, fan_in=d), stack(k, a, fan_in=k), stack(a)
        self.up_u, self.up_v = stack(a, k, fan_in=a), stack(k, d, fan_in=k)
        self.norm_w = torch.nn.Parameter(torch.ones(SCENARIOS, d))
        self.norm_b = torch.nn.Parameter(torch.zeros(SCENARIOS, d))
        self.register_buffer("rm", torch.zeros(SCENARIOS, d))
        self.register_buffer("rv", torch.ones(SCENARIOS, d))

    def forward(self, x, scen, counts):
        m = self.hyper(x).view(-1, self.k, self.k)

        def low_rank(h, u, m, v):
            return ((h @ u).unsqueeze(2) * m).sum(1) @ v

        def domain(s, a, n):
            h, ms = self.networks[s](x.narrow(0, a, n)), m.narrow(0, a, n)
            down = torch.sigmoid(low_rank(h, self.down_u[s], ms, self.down_v[s]) + self.down_b[s])
            up = low_rank(down, self.up_u[s], ms, self.up_v[s])
            up = F.batch_norm(up, self.rm[s], self.rv[s], self.norm_w[s], self.norm_b[s], self.training and n > 1, 0.1, 1e-5)
            return self.outs[s](h + up)

        return each_segment(counts, 0, domain).view(-1)


for _name, _cls in {"epnet": IEPNet, "ppnet": IPPNet, "adasparse": IAdaSparse, "hamur": IHAMUR}.items():
    IDIOMATIC[_name] = _cls
    MIRRORED[_name] = _cls


def build(variant, name):
    m = (MIRRORED if variant == "mirrored" else IDIOMATIC)[name]()
    return m, list(m.parameters()) if isinstance(m, torch.nn.Module) else m.params()


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
        if DEVICE != "cpu":
            torch.cuda.synchronize()

    for _ in range(3):
        step()
    steps, start = 0, time.perf_counter()
    while steps < 5 or time.perf_counter() - start < min_seconds:
        step()
        steps += 1
    return (time.perf_counter() - start) / steps * 1e3, steps


def main():
    torch.set_num_threads(int(sys.argv[1]))
    if DEVICE != "cpu":
        torch.set_default_device(DEVICE)
    print("ready threads %d torch %s device %s" % (torch.get_num_threads(), torch.__version__, DEVICE), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        variant, name, batch, min_seconds = line.split()
        if name not in IDIOMATIC:  # a backbone without a PyTorch version here
            print("ms_per_step nan steps 0", flush=True)
            continue
        ms, steps = measure(variant, name, int(batch), float(min_seconds))
        print("ms_per_step %.6f steps %d" % (ms, steps), flush=True)


if __name__ == "__main__":
    main()
