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

// visit_order sets order to the positions 0..n-1 of the n distinct row ids
// id in ascending order of id when the table (rows of row_bytes) is
// large, and to 0..n-1 otherwise. Walking a large table in address order
// makes its rows' pages and the page tables' lines neighbours that the
// memory system serves faster than a random order; the rows of a table
// that fits the caches are served fast in any order, and sorting them
// would cost more than it saves. The sort is by least-significant digit
// over the bits ids below rows can have: a few linear passes, where a
// comparison sort would cost O(n log n).
void visit_order(const int64_t* id, int64_t n, int64_t rows, int64_t row_bytes, std::vector<int64_t>& order) {
  order.resize(n);
  if (rows < kLargeTableBytes / std::max<int64_t>(row_bytes, 1)) {
    for (int64_t k = 0; k < n; k++) order[k] = k;
    return;
  }
  struct Entry {
    int64_t id, pos;
  };
  std::vector<Entry> a(n), b(n);
  for (int64_t k = 0; k < n; k++) a[k] = {id[k], k};
  constexpr int kDigitBits = 12;
  constexpr int64_t kBuckets = int64_t(1) << kDigitBits;
  const int bits = 64 - __builtin_clzll(static_cast<unsigned long long>(rows - 1) | 1);
  std::vector<int64_t> start(kBuckets);
  for (int shift = 0; shift < bits; shift += kDigitBits) {
    std::fill(start.begin(), start.end(), 0);
    for (const Entry& e : a) start[(e.id >> shift) & (kBuckets - 1)]++;
    int64_t sum = 0;
    for (int64_t& c : start) {
      const int64_t count = c;
      c = sum;
      sum += count;
    }
    for (const Entry& e : a) b[start[(e.id >> shift) & (kBuckets - 1)]++] = e;
    a.swap(b);
  }
  for (int64_t k = 0; k < n; k++) order[k] = a[k].pos;
}

// RowLoop holds what the row loops read: n distinct row ids, the order
// to visit their positions in (visit_order), their gradient rows g [n,
// dim], the table w, the optimizer's state (s1, s2: [rows, dim], or
// [rows] for row-wise Adagrad) and the step's scalars.
struct RowLoop {
  const int64_t* id;
  const int64_t* order;
  int64_t n, dim;
  const float* g;
  float* w;
  float* s1;
  float* s2;
  float* scratch;  // [dim], for a gradient row with weight decay added
  float lr, wd, eps;
  float b1, b2;       // Adam: 1 - beta1, 1 - beta2
  float step_scale;   // Adam: -lr * sqrt(bc2) / bc1; Adagrad: -lr / (1 + (step - 1) * lr_decay)
};

// The loops below take the row width as a template argument D: for the
// usual embedding widths it is a constant, so the loops over a row unroll
// into straight code; D = 0 reads the width at run time. Each
// element is computed by the same operations in the same order whatever D
// and whatever instruction set (an ISO C++ build fuses no multiply-add),
// so every variant gives the same bits.
template <int64_t D>
__attribute__((always_inline)) inline int64_t row_width(int64_t dim) {
  return D > 0 ? D : dim;
}

// prefetch_ahead asks for the table's row that the loop visits
// kPrefetchAhead rows after the q-th (to be written when for_write), and
// for its row of up to two state tensors ([rows, dim], or [rows] when
// per_row), to be written. GCC 12 at -O2 compiled the update loops without
// a single prefetch when this was a lambda or a function it could choose
// not to inline; forced inline, the instructions stay.
template <int64_t D>
__attribute__((always_inline)) inline void prefetch_ahead(const RowLoop& u, int64_t q, bool for_write,
                                                          const float* s1, const float* s2, bool per_row) {
  if (q + kPrefetchAhead >= u.n) return;
  const int64_t dim = row_width<D>(u.dim);
  const int64_t row = u.id[u.order[q + kPrefetchAhead]];
  if (for_write) {
    __builtin_prefetch(u.w + row * dim, 1);
  } else {
    __builtin_prefetch(u.w + row * dim, 0);
  }
  const int64_t off = per_row ? row : row * dim;
  if (s1 != nullptr) __builtin_prefetch(s1 + off, 1);
  if (s2 != nullptr) __builtin_prefetch(s2 + off, 1);
}

// grad_row is gradient row r with L2 weight decay added, as PyTorch's dense optimizers do.
template <int64_t D>
__attribute__((always_inline)) inline const float* grad_row(const RowLoop& u, int64_t r, const float* wr) {
  const int64_t dim = row_width<D>(u.dim);
  const float* gr = u.g + r * dim;
  if (u.wd == 0) return gr;
  for (int64_t j = 0; j < dim; j++) u.scratch[j] = gr[j] + u.wd * wr[j];
  return u.scratch;
}

template <int64_t D>
__attribute__((always_inline)) inline void gather_loop(const RowLoop& u, float* out) {
  const int64_t dim = row_width<D>(u.dim);
  for (int64_t q = 0; q < u.n; q++) {
    prefetch_ahead<D>(u, q, false, nullptr, nullptr, false);
    const int64_t r = u.order[q];
    std::memcpy(out + r * dim, u.w + u.id[r] * dim, dim * sizeof(float));
  }
}

// for_each_row visits u's rows in its order, asking for those ahead (and
// their rows of up to two state tensors, [rows, dim] or, per_row, [rows]),
// and calls body(row, wr, gr) with each row's number, its row in the table
// and its gradient.
template <int64_t D, typename Body>
__attribute__((always_inline)) inline void for_each_row(const RowLoop& u, const float* s1, const float* s2,
                                                        bool per_row, Body&& body) {
  const int64_t dim = row_width<D>(u.dim);
  for (int64_t q = 0; q < u.n; q++) {
    prefetch_ahead<D>(u, q, true, s1, s2, per_row);
    const int64_t r = u.order[q];
    const int64_t row = u.id[r];
    float* wr = u.w + row * dim;
    body(row, wr, grad_row<D>(u, r, wr));
  }
}

template <int64_t D>
__attribute__((always_inline)) inline void sgd_loop(const RowLoop& u) {
  const int64_t dim = row_width<D>(u.dim);
  for_each_row<D>(u, nullptr, nullptr, false, [&](int64_t, float* wr, const float* gr) __attribute__((always_inline)) {
    for (int64_t j = 0; j < dim; j++) wr[j] += -u.lr * gr[j];
  });
}

// adam_loop is torch.optim.SparseAdam: old += (1 - b) * (new - old), then
// p -= lr * sqrt(bc2) / bc1 * m / (sqrt(v) + eps).
template <int64_t D>
__attribute__((always_inline)) inline void adam_loop(const RowLoop& u) {
  const int64_t dim = row_width<D>(u.dim);
  for_each_row<D>(u, u.s1, u.s2, false, [&](int64_t row, float* wr, const float* gr) __attribute__((always_inline)) {
    float* m = u.s1 + row * dim;
    float* v = u.s2 + row * dim;
    for (int64_t j = 0; j < dim; j++) {
      const float om = m[j], ov = v[j];
      const float mu = (gr[j] - om) * u.b1;
      const float vu = (gr[j] * gr[j] - ov) * u.b2;
      m[j] = om + mu;
      v[j] = ov + vu;
      const float denom = std::sqrt(vu + ov) + u.eps;
      wr[j] += u.step_scale * ((mu + om) / denom);
    }
  });
}

template <int64_t D>
__attribute__((always_inline)) inline void adagrad_loop(const RowLoop& u) {
  const int64_t dim = row_width<D>(u.dim);
  for_each_row<D>(u, u.s1, nullptr, false, [&](int64_t row, float* wr, const float* gr) __attribute__((always_inline)) {
    float* s = u.s1 + row * dim;
    for (int64_t j = 0; j < dim; j++) {
      s[j] += gr[j] * gr[j];
      wr[j] += u.step_scale * (gr[j] / (std::sqrt(s[j]) + u.eps));
    }
  });
}

// rowwise_adagrad_loop is FBGEMM's row-wise Adagrad: one accumulator per
// row, fed the mean of the row's squared gradient.
template <int64_t D>
__attribute__((always_inline)) inline void rowwise_adagrad_loop(const RowLoop& u) {
  const int64_t dim = row_width<D>(u.dim);
  for_each_row<D>(u, u.s1, nullptr, true, [&](int64_t row, float* wr, const float* gr) __attribute__((always_inline)) {
    float sq = 0;
    for (int64_t j = 0; j < dim; j++) sq += gr[j] * gr[j];
    u.s1[row] += sq / static_cast<float>(dim);
    const float mult = u.step_scale / (std::sqrt(u.s1[row]) + u.eps);
    for (int64_t j = 0; j < dim; j++) wr[j] += mult * gr[j];
  });
}

// kGatherRows stands for the gather among the optimizer kinds of row_loop.
constexpr int kGatherRows = -1;

template <int64_t D>
__attribute__((always_inline)) inline void row_loop_of_width(int kind, const RowLoop& u, float* out) {
  switch (kind) {
    case kGatherRows: gather_loop<D>(u, out); break;
    case MSR_SPARSE_SGD: sgd_loop<D>(u); break;
    case MSR_SPARSE_ADAM: adam_loop<D>(u); break;
    case MSR_SPARSE_ADAGRAD: adagrad_loop<D>(u); break;
    case MSR_SPARSE_ROWWISE_ADAGRAD: rowwise_adagrad_loop<D>(u); break;
  }
}

// row_loop runs kind's loop over u (the gather writes out [n, dim]). On
// x86-64 it is compiled twice, for AVX2 and for the baseline, and the
// loader picks the one the CPU runs: the AVX2 build (mostly scalar still,
// as the row-wise sum must keep its order) ran the unrolled row-wise loop
// faster than the baseline's.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
void row_loop(int kind, const RowLoop& u, float* out) {
  switch (u.dim) {
    case 4: row_loop_of_width<4>(kind, u, out); break;
    case 8: row_loop_of_width<8>(kind, u, out); break;
    case 16: row_loop_of_width<16>(kind, u, out); break;
    case 32: row_loop_of_width<32>(kind, u, out); break;
    case 64: row_loop_of_width<64>(kind, u, out); break;
    default: row_loop_of_width<0>(kind, u, out); break;
  }
}

// gather_rows_cpu copies rows ids of a contiguous float table into out [n, dim].
void gather_rows_cpu(const at::Tensor& table, const at::Tensor& ids, at::Tensor& out) {
  const int64_t n = ids.numel(), dim = table.size(1);
  out = at::empty({n, dim}, table.options());
  std::vector<int64_t> order;
  RowLoop u{};
  u.id = ids.data_ptr<int64_t>();
  u.n = n;
  u.dim = dim;
  u.w = table.data_ptr<float>();
  visit_order(u.id, n, table.size(0), dim * sizeof(float), order);
  u.order = order.data();
  row_loop(kGatherRows, u, out.data_ptr<float>());
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
    const int64_t dim = table.size(1);
    std::vector<float> scratch(dim);
    std::vector<int64_t> order;
    RowLoop u{};
    u.id = ids.data_ptr<int64_t>();
    u.n = ids.numel();
    visit_order(u.id, u.n, table.size(0), dim * sizeof(float), order);
    u.order = order.data();
    u.dim = dim;
    u.g = grad.data_ptr<float>();
    u.w = table.data_ptr<float>();
    u.s1 = slot[0].defined() ? slot[0].data_ptr<float>() : nullptr;
    u.s2 = slot[1].defined() ? slot[1].data_ptr<float>() : nullptr;
    u.scratch = scratch.data();
    u.lr = static_cast<float>(opts.lr);
    u.wd = static_cast<float>(opts.weight_decay);
    u.eps = static_cast<float>(opts.eps);
    if (kind == MSR_SPARSE_ADAM) {
      u.b1 = static_cast<float>(1 - opts.beta1);
      u.b2 = static_cast<float>(1 - opts.beta2);
      const double bc1 = 1 - std::pow(opts.beta1, static_cast<double>(step));
      const double bc2 = 1 - std::pow(opts.beta2, static_cast<double>(step));
      u.step_scale = static_cast<float>(-(opts.lr * std::sqrt(bc2) / bc1));
    } else {
      u.step_scale = static_cast<float>(-(opts.lr / (1 + static_cast<double>(step - 1) * opts.lr_decay)));
    }
    row_loop(kind, u, nullptr);
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

int64_t msr_sparse_sorted_visit_bytes(void) { return kLargeTableBytes; }

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
