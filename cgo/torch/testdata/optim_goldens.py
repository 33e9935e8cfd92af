"""Goldens for TestOptimizerMatchesPyTorch (cgo/optim_test.go).

Run with python3-torch (1.13): /usr/bin/python3 cgo/testdata/optim_goldens.py
It prints the Go map literal pasted into optim_test.go as optimGoldens: for
each case, the parameters and the optimizer state after optimSteps steps of
torch.optim with two parameter groups, the learning rates changed after step 3.
The loss and the hyperparameters must match optimCases in optim_test.go.
"""
import torch

STEPS, LR_CHANGE = 6, 3

CASES = [
    ("sgd", torch.optim.SGD, dict(lr=0.1, weight_decay=0.01), dict(lr=0.05)),
    ("sgd momentum", torch.optim.SGD, dict(lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01), dict(lr=0.05, momentum=0.5)),
    ("sgd nesterov", torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01), dict(lr=0.05, momentum=0.8, nesterov=True)),
    ("adam", torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01), dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6)),
    ("adamw", torch.optim.AdamW, dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1), dict(lr=0.02, betas=(0.8, 0.99), eps=1e-8, weight_decay=0.0)),
    ("adagrad", torch.optim.Adagrad, dict(lr=0.1, lr_decay=0.01, weight_decay=0.01, eps=1e-10), dict(lr=0.05, eps=1e-10)),
]

# torch 1.13's Adagrad fills its "sum" state from the constructor's
# initial_accumulator_value and ignores a per-group value, so it goes here and
# the Go side sets the same value in both groups.
CONSTRUCTOR = {"adagrad": dict(initial_accumulator_value=0.1)}


def loss_fn(p0, p1):
    a = torch.tensor([[1.0, 2.0, 0.5], [0.3, 1.5, 2.0]])
    return (a * p0 * p0).sum() + torch.tanh(p0 @ p1).sum() + (p1 * p1 * p1).sum()


def fmt(t):
    return "{" + ", ".join(repr(float(v)) for v in t.detach().flatten()) + "}"


def main():
    print("var optimGoldens = map[string]map[string][]float64{")
    for name, cls, g0, g1 in CASES:
        p0 = torch.tensor([[0.5, -0.25, 1.0], [0.75, -1.5, 0.125]], requires_grad=True)
        p1 = torch.tensor([0.2, -0.4, 0.6], requires_grad=True)
        opt = cls([dict(params=[p0], **g0), dict(params=[p1], **g1)], **CONSTRUCTOR.get(name, {}))
        for step in range(STEPS):
            if step == LR_CHANGE:
                opt.param_groups[0]["lr"] *= 0.5
                opt.param_groups[1]["lr"] *= 0.25
            opt.zero_grad()
            loss_fn(p0, p1).backward()
            opt.step()
        print("\t%r: {" % name)
        for pname, p in (("p0", p0), ("p1", p1)):
            print("\t\t%r: %s," % (pname, fmt(p)))
            for slot, v in sorted(opt.state[p].items()):
                if slot == "step" or v is None:
                    continue
                print("\t\t%r: %s," % (pname + "." + slot, fmt(v)))
        print("\t},")
    print("}")


if __name__ == "__main__":
    main()
