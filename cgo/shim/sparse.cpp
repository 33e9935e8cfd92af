// sparse.cpp: embedding lookups and row-wise optimizers whose cost follows
// the batch, not the table.
//
// A lookup gathers the batch's distinct rows into a small leaf tensor that
// autograd sees (the table itself never requires grad), so the backward pass
// leaves a gradient for those rows only, duplicates accumulated. A row-wise
// optimizer then updates just those rows of the table and of its state.
// Rows a step does not touch are never read or written.

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "msr.h"
#include "internal.h"

namespace {

const at::Tensor& T(msr_tensor h) {
  if (h == nullptr) throw std::invalid_argument("null tensor handle");
  return h->t;
}

void check_table(const at::Tensor& table) {
  if (table.dim() != 2) throw std::invalid_argument("embedding table must be 2-D [rows, dim], got " + std::to_string(table.dim()) + "-D");
}

// distinct_rows finds the distinct ids of a CPU int64 tensor in order of
// first occurrence and each element's position among them, with an
// open-addressing hash table: one pass, O(n), where a sort would cost
// O(n log n). Ids outside [0, rows) are an error naming the first one.
void distinct_rows(const at::Tensor& ids_in, int64_t rows, at::Tensor& uniq, at::Tensor& inverse) {
  at::Tensor ids = ids_in.contiguous();
  const int64_t n = ids.numel();
  const int64_t* id = ids.data_ptr<int64_t>();
  inverse = at::empty(ids.sizes(), ids.options());
  int64_t* inv = inverse.data_ptr<int64_t>();
  int64_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  const int shift = 64 - __builtin_ctzll(static_cast<unsigned long long>(cap));
  std::vector<int64_t> key(cap, -1), slot(cap);
  std::vector<int64_t> out;
  out.reserve(n);
  for (int64_t i = 0; i < n; i++) {
    const int64_t v = id[i];
    if (v < 0 || v >= rows)
      throw std::out_of_range("embedding index " + std::to_string(v) + " out of range [0, " + std::to_string(rows) + ")");
    uint64_t h = (static_cast<uint64_t>(v) * 0x9E3779B97F4A7C15ull) >> shift;
    while (key[h] != -1 && key[h] != v) h = (h + 1) & (cap - 1);
    if (key[h] == -1) {
      key[h] = v;
      slot[h] = static_cast<int64_t>(out.size());
      out.push_back(v);
    }
    inv[i] = slot[h];
  }
  uniq = at::empty({static_cast<int64_t>(out.size())}, ids.options());
  std::memcpy(uniq.data_ptr<int64_t>(), out.data(), out.size() * sizeof(int64_t));
}

// unique_rows is distinct_rows on any device (other devices sort).
void unique_rows(const at::Tensor& ids, int64_t rows, at::Tensor& uniq, at::Tensor& inverse) {
  if (ids.scalar_type() != at::kLong) throw std::invalid_argument("embedding indices must be int64");
  if (ids.is_cpu()) {
    distinct_rows(ids, rows, uniq, inverse);
    return;
  }
  if (ids.is_meta()) {
    // No data to compare or range-check: every id counts as distinct, the
    // only answer whose shapes hold for any values (placement tests).
    uniq = at::empty({ids.numel()}, ids.options());
    inverse = at::empty(ids.sizes(), ids.options());
    return;
  }
  if (ids.numel() > 0 && (ids.min().item<int64_t>() < 0 || ids.max().item<int64_t>() >= rows))
    throw std::out_of_range("embedding index out of range [0, " + std::to_string(rows) + ")");
  auto r = at::_unique(ids, /*sorted=*/true, /*return_inverse=*/true);
  uniq = std::get<0>(r);
  inverse = std::get<1>(r);
}

// A batch's rows lie scattered over a table far larger than the caches, so
// each row costs a memory round trip; asking for rows a few iterations
// ahead overlaps those trips instead of paying them one after another.
constexpr int64_t kPrefetchAhead = 16;

inline void prefetch_row(const float* p, bool for_write) {
  if (for_write) {
    __builtin_prefetch(p, 1);
  } else {
    __builtin_prefetch(p, 0);
  }
}

// prefetch_ahead asks for row id[r + kPrefetchAhead] of the table w and of
// up to two state tensors ([rows, dim], or [rows] when per_row), to be
// written. GCC 12 at -O2 compiled the update loops without a single
// prefetch when this was a lambda or a function it could choose not to
// inline; forced inline, the instructions stay.
__attribute__((always_inline)) inline void prefetch_ahead(const int64_t* id, int64_t r, int64_t n, const float* w,
                                                          int64_t dim, const float* s1, const float* s2,
                                                          bool per_row) {
  if (r + kPrefetchAhead >= n) return;
  const int64_t row = id[r + kPrefetchAhead];
  __builtin_prefetch(w + row * dim, 1);
  const int64_t off = per_row ? row : row * dim;
  if (s1 != nullptr) __builtin_prefetch(s1 + off, 1);
  if (s2 != nullptr) __builtin_prefetch(s2 + off, 1);
}

// gather_rows_cpu copies rows ids of a contiguous float table into out [n, dim].
void gather_rows_cpu(const at::Tensor& table, const at::Tensor& ids, at::Tensor& out) {
  const int64_t n = ids.numel(), dim = table.size(1);
  const int64_t* id = ids.data_ptr<int64_t>();
  const float* w = table.data_ptr<float>();
  out = at::empty({n, dim}, table.options());
  float* o = out.data_ptr<float>();
  for (int64_t r = 0; r < n; r++) {
    if (r + kPrefetchAhead < n) prefetch_row(w + id[r + kPrefetchAhead] * dim, false);
    std::memcpy(o + r * dim, w + id[r] * dim, dim * sizeof(float));
  }
}

int slots_for(int kind) {
  switch (kind) {
    case MSR_SPARSE_SGD: return 0;
    case MSR_SPARSE_ADAM: return 2;
    case MSR_SPARSE_ADAGRAD: return 1;
    case MSR_SPARSE_ROWWISE_ADAGRAD: return 1;
  }
  return -1;
}

}  // namespace

struct msr_sparse_optim_s {
  int kind;
  msr_optim_options opts;
  at::Tensor table;    // [rows, dim], updated in place
  at::Tensor slot[2];  // Adam: exp_avg, exp_avg_sq [rows, dim]; Adagrad: sum [rows, dim]; row-wise Adagrad: sum [rows]
  int64_t step = 0;    // one count for the whole table, as PyTorch keeps per parameter

  // apply updates the rows ids (distinct) with their gradient rows grad [n, dim].
  void apply(const at::Tensor& ids, const at::Tensor& grad) {
    step++;
    if (ids.numel() == 0) return;
    const bool fused = table.is_cpu() && table.scalar_type() == at::kFloat && table.is_contiguous() &&
                       grad.scalar_type() == at::kFloat;
    if (fused) {
      apply_cpu(ids.contiguous(), grad.contiguous());
    } else {
      apply_ops(ids, grad.to(table.scalar_type()));
    }
  }

  // apply_cpu reads and writes each touched row once, in one loop: a few
  // passes over [n, dim] instead of one libtorch op (and temporary) per
  // term of the update rule.
  void apply_cpu(const at::Tensor& ids, const at::Tensor& grad) {
    const int64_t n = ids.numel(), dim = table.size(1);
    const int64_t* id = ids.data_ptr<int64_t>();
    const float* g = grad.data_ptr<float>();
    float* w = table.data_ptr<float>();
    const float lr = static_cast<float>(opts.lr), wd = static_cast<float>(opts.weight_decay);
    const float eps = static_cast<float>(opts.eps);
    std::vector<float> gbuf(dim);
    // grad_row is the gradient of row r with L2 weight decay added, as PyTorch's dense optimizers do.
    auto grad_row = [&](int64_t r, const float* wr) -> const float* {
      const float* gr = g + r * dim;
      if (wd == 0) return gr;
      for (int64_t j = 0; j < dim; j++) gbuf[j] = gr[j] + wd * wr[j];
      return gbuf.data();
    };
    switch (kind) {
      case MSR_SPARSE_SGD:
        for (int64_t r = 0; r < n; r++) {
          prefetch_ahead(id, r, n, w, dim, nullptr, nullptr, false);
          float* wr = w + id[r] * dim;
          const float* gr = grad_row(r, wr);
          for (int64_t j = 0; j < dim; j++) wr[j] += -lr * gr[j];
        }
        break;
      case MSR_SPARSE_ADAM: {
        // torch.optim.SparseAdam: old += (1 - b) * (new - old), then
        // p -= lr * sqrt(bc2) / bc1 * m / (sqrt(v) + eps).
        float* m = slot[0].data_ptr<float>();
        float* v = slot[1].data_ptr<float>();
        const float b1 = static_cast<float>(1 - opts.beta1), b2 = static_cast<float>(1 - opts.beta2);
        const double bc1 = 1 - std::pow(opts.beta1, static_cast<double>(step));
        const double bc2 = 1 - std::pow(opts.beta2, static_cast<double>(step));
        const float step_size = static_cast<float>(-(opts.lr * std::sqrt(bc2) / bc1));
        for (int64_t r = 0; r < n; r++) {
          prefetch_ahead(id, r, n, w, dim, m, v, false);
          const int64_t off = id[r] * dim;
          float* wr = w + off;
          const float* gr = grad_row(r, wr);
          for (int64_t j = 0; j < dim; j++) {
            const float om = m[off + j], ov = v[off + j];
            const float mu = (gr[j] - om) * b1;
            const float vu = (gr[j] * gr[j] - ov) * b2;
            m[off + j] = om + mu;
            v[off + j] = ov + vu;
            const float denom = std::sqrt(vu + ov) + eps;
            wr[j] += step_size * ((mu + om) / denom);
          }
        }
        break;
      }
      case MSR_SPARSE_ADAGRAD: {
        float* s = slot[0].data_ptr<float>();
        const float clr = static_cast<float>(-(opts.lr / (1 + static_cast<double>(step - 1) * opts.lr_decay)));
        for (int64_t r = 0; r < n; r++) {
          prefetch_ahead(id, r, n, w, dim, s, nullptr, false);
          const int64_t off = id[r] * dim;
          float* wr = w + off;
          const float* gr = grad_row(r, wr);
          for (int64_t j = 0; j < dim; j++) {
            s[off + j] += gr[j] * gr[j];
            wr[j] += clr * (gr[j] / (std::sqrt(s[off + j]) + eps));
          }
        }
        break;
      }
      case MSR_SPARSE_ROWWISE_ADAGRAD: {
        // FBGEMM's row-wise Adagrad: one accumulator per row, fed the mean
        // of the row's squared gradient.
        float* s = slot[0].data_ptr<float>();
        const float clr = static_cast<float>(-(opts.lr / (1 + static_cast<double>(step - 1) * opts.lr_decay)));
        for (int64_t r = 0; r < n; r++) {
          prefetch_ahead(id, r, n, w, dim, s, nullptr, true);
          float* wr = w + id[r] * dim;
          const float* gr = grad_row(r, wr);
          float sq = 0;
          for (int64_t j = 0; j < dim; j++) sq += gr[j] * gr[j];
          s[id[r]] += sq / static_cast<float>(dim);
          const float mult = clr / (std::sqrt(s[id[r]]) + eps);
          for (int64_t j = 0; j < dim; j++) wr[j] += mult * gr[j];
        }
        break;
      }
    }
  }

  // apply_ops is the same update with libtorch ops on the gathered rows, for
  // every device and dtype.
  void apply_ops(const at::Tensor& ids, const at::Tensor& grad_in) {
    at::Tensor w = table.index_select(0, ids);
    at::Tensor g = opts.weight_decay != 0 ? grad_in.add(w, opts.weight_decay) : grad_in;
    switch (kind) {
      case MSR_SPARSE_SGD:
        w.add_(g, -opts.lr);
        break;
      case MSR_SPARSE_ADAM: {
        at::Tensor om = slot[0].index_select(0, ids), ov = slot[1].index_select(0, ids);
        at::Tensor mu = g.sub(om).mul_(1 - opts.beta1);
        at::Tensor vu = g.mul(g).sub_(ov).mul_(1 - opts.beta2);
        at::Tensor m = mu.add(om), v = vu.add(ov);
        slot[0].index_copy_(0, ids, m);
        slot[1].index_copy_(0, ids, v);
        const double bc1 = 1 - std::pow(opts.beta1, static_cast<double>(step));
        const double bc2 = 1 - std::pow(opts.beta2, static_cast<double>(step));
        const double step_size = -(opts.lr * std::sqrt(bc2) / bc1);
        w.add_(m.div(v.sqrt().add_(opts.eps)).mul_(step_size));
        break;
      }
      case MSR_SPARSE_ADAGRAD: {
        const double clr = -(opts.lr / (1 + static_cast<double>(step - 1) * opts.lr_decay));
        at::Tensor s = slot[0].index_select(0, ids).addcmul_(g, g);
        slot[0].index_copy_(0, ids, s);
        w.add_(g.div(s.sqrt().add_(opts.eps)), clr);
        break;
      }
      case MSR_SPARSE_ROWWISE_ADAGRAD: {
        const double clr = -(opts.lr / (1 + static_cast<double>(step - 1) * opts.lr_decay));
        at::Tensor s = slot[0].index_select(0, ids).add_(g.mul(g).mean(1));
        slot[0].index_copy_(0, ids, s);
        w.add_(g.mul(s.sqrt().add_(opts.eps).reciprocal().mul_(clr).unsqueeze(1)));
        break;
      }
    }
    table.index_copy_(0, ids, w);
  }
};

extern "C" {

msr_err msr_embedding_gather(msr_tensor table, msr_tensor indices, msr_tensor* rows, msr_tensor* ids, msr_tensor* inverse) {
  GUARD({
    at::NoGradGuard no_grad;
    const at::Tensor& w = T(table);
    check_table(w);
    at::Tensor uniq, inv;
    unique_rows(T(indices), w.size(0), uniq, inv);
    at::Tensor r;
    if (w.is_cpu() && w.scalar_type() == at::kFloat && w.is_contiguous()) {
      gather_rows_cpu(w, uniq, r);
    } else {
      r = w.index_select(0, uniq);
    }
    r.requires_grad_(true);
    *rows = new msr_tensor_s{r};
    *ids = new msr_tensor_s{uniq};
    *inverse = new msr_tensor_s{inv};
  })
}

msr_err msr_sparse_optim_new(int kind, msr_tensor table, msr_optim_options opts, msr_sparse_optim* out) {
  GUARD({
    if (slots_for(kind) < 0) throw std::invalid_argument("unknown sparse optimizer kind " + std::to_string(kind));
    at::NoGradGuard no_grad;
    const at::Tensor& w = T(table);
    check_table(w);
    if (w.requires_grad())
      throw std::invalid_argument("a sparse optimizer's table must not require grad: its gradients come from the gathered rows");
    auto* o = new msr_sparse_optim_s{kind, opts, w, {}, 0};
    if (kind == MSR_SPARSE_ADAM) {
      o->slot[0] = msr_empty_table(w.sizes(), w.options()).zero_();
      o->slot[1] = msr_empty_table(w.sizes(), w.options()).zero_();
    } else if (kind == MSR_SPARSE_ADAGRAD) {
      o->slot[0] = msr_empty_table(w.sizes(), w.options()).fill_(opts.initial_accumulator);
    } else if (kind == MSR_SPARSE_ROWWISE_ADAGRAD) {
      o->slot[0] = msr_empty_table({w.size(0)}, w.options()).fill_(opts.initial_accumulator);
    }
    *out = o;
  })
}

void msr_sparse_optim_free(msr_sparse_optim o) { delete o; }

msr_err msr_sparse_optim_step(msr_sparse_optim o, msr_tensor ids, msr_tensor grad, int distinct) {
  GUARD({
    at::NoGradGuard no_grad;
    at::Tensor i = T(ids);
    at::Tensor g = T(grad);
    if (i.dim() != 1 || g.dim() != 2 || g.size(0) != i.size(0) || g.size(1) != o->table.size(1))
      throw std::invalid_argument("sparse step: ids " + c10::str(i.sizes()) + " and gradient rows " + c10::str(g.sizes()) +
                                  " do not fit a table of shape " + c10::str(o->table.sizes()));
    if (i.scalar_type() != at::kLong) throw std::invalid_argument("sparse step: ids must be int64");
    if (distinct) {
      if (i.numel() > 0 && !i.is_meta() && (i.min().item<int64_t>() < 0 || i.max().item<int64_t>() >= o->table.size(0)))
        throw std::out_of_range("sparse step: row id out of range [0, " + std::to_string(o->table.size(0)) + ")");
    } else {
      // Gradients gathered from several sources (ranks) may name a row more
      // than once; the update is not linear, so sum them first (finding
      // them checks the range).
      at::Tensor uniq, inv;
      unique_rows(i, o->table.size(0), uniq, inv);
      if (!(uniq.is_cpu() && uniq.numel() == i.numel())) {
        g = at::zeros({uniq.numel(), g.size(1)}, g.options()).index_add_(0, inv, g);
        i = uniq;
      }
    }
    o->apply(i, g);
  })
}

msr_err msr_sparse_optim_set_lr(msr_sparse_optim o, double lr) { GUARD(o->opts.lr = lr) }

msr_err msr_sparse_optim_get_lr(msr_sparse_optim o, double* lr) { GUARD(*lr = o->opts.lr) }

msr_err msr_sparse_optim_state(msr_sparse_optim o, int k, msr_tensor* out) {
  GUARD({
    if (k < 0 || k >= slots_for(o->kind)) throw std::out_of_range("sparse optimizer state slot " + std::to_string(k));
    *out = new msr_tensor_s{o->slot[k]};
  })
}

msr_err msr_sparse_optim_get_step(msr_sparse_optim o, int64_t* step) { GUARD(*step = o->step) }

msr_err msr_sparse_optim_set_step(msr_sparse_optim o, int64_t step) { GUARD(o->step = step) }

}  // extern "C"
