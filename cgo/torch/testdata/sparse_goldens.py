"""Goldens for TestSparseOptimizerMatchesPyTorch (cgo/torch/sparse_test.go).

Run with python3-torch (1.13): /usr/bin/python3 cgo/torch/testdata/sparse_goldens.py
It prints the Go map literal pasted into sparse_test.go as sparseGoldens: the
table and the optimizer state after SPARSE_STEPS steps of torch.optim.SparseAdam
and of torch.optim.Adagrad on an nn.Embedding(sparse=True), each step's batch
naming some rows more than once and row 6 never, with the learning rate
halved before step LR_CHANGE + 1. The loss and the hyperparameters must match
sparseLoss and sparseCases in sparse_test.go.
"""
import torch

STEPS, LR_CHANGE, ROWS, DIM = 6, 3, 7, 3

CASES = [
    ("adam", lambda p: torch.optim.SparseAdam(p, lr=0.01, betas=(0.9, 0.999), eps=1e-8)),
    ("adagrad", lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.01, eps=1e-10, initial_accumulator_value=0.1)),
]


def initial():
    return torch.tensor([[0.1 * (r + 1) - 0.05 * j * (r % 3) for j in range(DIM)] for r in range(ROWS)])


def batch(step):
    """Row ids of a step's lookups: duplicates, and row 6 never."""
    return torch.tensor([step % 6, (step + 1) % 6, step % 6, 2, 2, (2 * step) % 6])


def loss_fn(e):
    k = torch.arange(e.shape[0], dtype=torch.float32).unsqueeze(1)
    j = torch.arange(e.shape[1], dtype=torch.float32).unsqueeze(0)
    c = 0.1 * (k + 1) + 0.05 * j
    return (c * e * e).sum() + torch.tanh(e).sum()


def fmt(t):
    return "{" + ", ".join(repr(float(v)) for v in t.detach().flatten()) + "}"


def main():
    print("var sparseGoldens = map[string]map[string][]float64{")
    for name, make in CASES:
        emb = torch.nn.Embedding(ROWS, DIM, sparse=True)
        with torch.no_grad():
            emb.weight.copy_(initial())
        opt = make([emb.weight])
        for step in range(STEPS):
            if step == LR_CHANGE:
                opt.param_groups[0]["lr"] *= 0.5
            opt.zero_grad()
            loss_fn(emb(batch(step))).backward()
            opt.step()
        print("\t\"%s\": {" % name)
        print("\t\t\"weight\": %s," % fmt(emb.weight))
        for slot, v in sorted(opt.state[emb.weight].items()):
            if slot == "step":
                continue
            print("\t\t\"%s\": %s," % (slot, fmt(v)))
        print("\t},")
    print("}")


if __name__ == "__main__":
    main()
