// dist.cpp: libtorch's c10d for data-parallel training: a TCPStore for
// rendezvous, a process group (Gloo on CPUs, NCCL on GPUs) and the few
// collectives a data-parallel trainer needs, each waited on with the
// group's timeout so that a dead or silent peer becomes an error, not a hang.
//
// Gloo is compiled in when the build found its headers and libtorch exports
// ProcessGroupGloo (MSR_WITH_GLOO, set by cgo/find_libtorch.sh); NCCL lives
// in dist_nccl.cpp under MSR_WITH_NCCL. Without either, creating such a
// group is an error that says why.

#include "msr.h"
#include "internal.h"

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef MSR_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>

#include <chrono>
#include <mutex>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "dist_internal.h"

struct msr_store_s {
  c10::intrusive_ptr<c10d::Store> store;
  int port;
};

struct msr_pg_s {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  int rank, size;
  std::chrono::milliseconds timeout;
};

namespace {


// rank_prefix names this rank in every failure of a collective, since
// Gloo's error text names only a socket address.
std::string rank_prefix(const msr_pg_s* g) {
  return "rank " + std::to_string(g->rank) + " of " + std::to_string(g->size) + ": ";
}

#define PG_GUARD(g, ...)                                                        \
  try {                                                                         \
    __VA_ARGS__;                                                                \
    return nullptr;                                                             \
  } catch (const c10::OutOfMemoryError& e) {                                    \
    return make_err(MSR_OOM_PREFIX + rank_prefix(g), e.what_without_backtrace()); \
  } catch (const c10::Error& e) {                                               \
    return make_err(rank_prefix(g), e.what_without_backtrace());                \
  } catch (const std::exception& e) {                                           \
    return make_err(rank_prefix(g), e.what());                                  \
  } catch (...) {                                                               \
    return make_err(rank_prefix(g), "unknown C++ exception");                   \
  }

void wait(msr_pg_s* g, const c10::intrusive_ptr<c10d::Work>& w) { w->wait(g->timeout); }

// bucket_ranges splits tensors into runs of one dtype and device holding
// at most bucket_bytes each (a larger tensor gets a run of its own).
std::vector<std::pair<size_t, size_t>> bucket_ranges(const std::vector<at::Tensor>& ts, int64_t bucket_bytes) {
  std::vector<std::pair<size_t, size_t>> out;
  size_t i = 0;
  while (i < ts.size()) {
    size_t j = i + 1;
    int64_t bytes = ts[i].numel() * ts[i].element_size();
    while (j < ts.size() && ts[j].scalar_type() == ts[i].scalar_type() && ts[j].device() == ts[i].device() &&
           bytes + ts[j].numel() * ts[j].element_size() <= bucket_bytes) {
      bytes += ts[j].numel() * ts[j].element_size();
      j++;
    }
    out.emplace_back(i, j);
    i = j;
  }
  return out;
}

at::Tensor flat_of(const std::vector<at::Tensor>& ts, size_t lo, size_t hi) {
  std::vector<at::Tensor> parts;
  parts.reserve(hi - lo);
  for (size_t k = lo; k < hi; k++) parts.push_back(ts[k].reshape(-1));
  return at::cat(parts);
}

// The gradient average (msr_pg_average_grads, the reducer) sends every
// parameter from every rank, zeros where a rank has no gradient, so that
// the buckets line up; with the last bucket travel the count of ranks that
// had each gradient and the caller's flags, and a parameter no rank
// touched keeps no gradient, as it would in one process.

// grad_bucket packs the gradients of params [lo, hi) into one flat tensor.
at::Tensor grad_bucket(const std::vector<at::Tensor>& params, size_t lo, size_t hi) {
  std::vector<at::Tensor> grads;
  grads.reserve(hi - lo);
  for (size_t k = lo; k < hi; k++) {
    const at::Tensor& gr = params[k].grad();
    grads.push_back(gr.defined() ? gr : at::zeros_like(params[k]));
  }
  return flat_of(grads, 0, grads.size());
}

// presence_tail is what the last bucket carries: 1 for each parameter with a
// gradient on this rank, then the flags.
at::Tensor presence_tail(const std::vector<at::Tensor>& params, const double* flags, int nflags) {
  const int64_t n = static_cast<int64_t>(params.size());
  at::Tensor tail = at::empty({n + nflags}, at::kDouble);
  double* t = tail.data_ptr<double>();
  for (int64_t k = 0; k < n; k++) t[k] = params[k].grad().defined() ? 1 : 0;
  for (int i = 0; i < nflags; i++) t[n + i] = flags[i];
  return tail;
}

// average_into takes the summed buckets (the last one ending with the summed
// presence_tail), returns the summed flags and leaves each parameter some
// rank had a gradient of with the mean over the world's ranks.
void average_into(const std::vector<at::Tensor>& params, const std::vector<std::pair<size_t, size_t>>& ranges,
                  std::vector<at::Tensor>& flats, int world, double* flags, int nflags) {
  const int64_t n = static_cast<int64_t>(params.size());
  const at::Tensor& last = flats.back();
  at::Tensor tail = last.narrow(0, last.numel() - n - nflags, n + nflags).to(at::kCPU, at::kDouble).contiguous();
  const double* present = tail.data_ptr<double>();
  for (int i = 0; i < nflags; i++) flags[i] = present[n + i];
  for (size_t b = 0; b < ranges.size(); b++) {
    flats[b].mul_(1.0 / world);
    int64_t off = 0;
    for (size_t k = ranges[b].first; k < ranges[b].second; k++) {
      at::Tensor p = params[k];
      at::Tensor avg = flats[b].narrow(0, off, p.numel()).view_as(p);
      off += p.numel();
      if (present[k] == 0) continue;
      if (p.grad().defined())
        p.mutable_grad().copy_(avg);
      else
        p.mutable_grad() = avg.clone();
    }
  }
}

// allgather_cat gathers t (any length along dimension 0, the same trailing
// shape on every rank) from every rank and concatenates the pieces in rank
// order; counts receives each rank's length. Gloo gathers equal shapes only,
// so the pieces travel padded to the longest.
at::Tensor allgather_cat(msr_pg_s* g, const at::Tensor& t, std::vector<int64_t>* counts) {
  at::Tensor len = at::full({1}, t.size(0), at::TensorOptions().dtype(at::kLong).device(t.device()));
  std::vector<at::Tensor> lens_out(g->size);
  for (auto& l : lens_out) l = at::empty_like(len);
  std::vector<std::vector<at::Tensor>> lo{lens_out};
  std::vector<at::Tensor> li{len};
  wait(g, g->pg->allgather(lo, li));
  std::vector<int64_t> n(g->size);
  int64_t most = 0;
  for (int r = 0; r < g->size; r++) {
    n[r] = lo[0][r].item<int64_t>();
    most = std::max(most, n[r]);
  }
  std::vector<int64_t> shape = t.sizes().vec();
  shape[0] = most;
  at::Tensor padded = at::zeros(shape, t.options());
  if (t.size(0) > 0) padded.narrow(0, 0, t.size(0)).copy_(t);
  std::vector<std::vector<at::Tensor>> outs(1);
  for (int r = 0; r < g->size; r++) outs[0].push_back(at::empty(shape, t.options()));
  std::vector<at::Tensor> in{padded};
  wait(g, g->pg->allgather(outs, in));
  std::vector<at::Tensor> pieces;
  for (int r = 0; r < g->size; r++) pieces.push_back(outs[0][r].narrow(0, 0, n[r]));
  if (counts) *counts = n;
  return at::cat(pieces);
}

}  // namespace

extern "C" {

void msr_dist_backends(int* gloo, int* nccl) {
#ifdef MSR_WITH_GLOO
  *gloo = 1;
#else
  *gloo = 0;
#endif
  *nccl = msr_nccl_compiled();
}

msr_err msr_store_new(const char* host, int port, int is_server, int world_size, int64_t timeout_ms,
                      const char* prefix, msr_store* out) {
  GUARD({
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    if (world_size > 0) o.numWorkers = static_cast<std::size_t>(world_size);
    // A hosting store does not wait for its clients here: the process group's
    // rendezvous waits for them, under its own timeout and error.
    o.waitWorkers = false;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    // Several stores in one process may host and join (tests, the agent's
    // convention), as PyTorch's init_process_group allows.
    o.multiTenant = true;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(host, o);
    int bound = tcp->getPort();
    c10::intrusive_ptr<c10d::Store> s = tcp;
    if (prefix != nullptr && prefix[0] != '\0') s = c10::make_intrusive<c10d::PrefixStore>(prefix, s);
    *out = new msr_store_s{s, bound};
  })
}

void msr_store_free(msr_store s) { delete s; }

int msr_store_port(msr_store s) { return s->port; }

msr_err msr_store_set(msr_store s, const char* key, const void* value, int64_t n) {
  GUARD({
    const auto* p = static_cast<const uint8_t*>(value);
    s->store->set(key, std::vector<uint8_t>(p, p + n));
  })
}

msr_err msr_store_get(msr_store s, const char* key, int64_t timeout_ms, void** value, int64_t* n) {
  GUARD({
    s->store->wait({key}, std::chrono::milliseconds(timeout_ms));
    std::vector<uint8_t> v = s->store->get(key);
    void* buf = std::malloc(v.empty() ? 1 : v.size());
    if (buf == nullptr) throw std::bad_alloc();
    if (!v.empty()) std::memcpy(buf, v.data(), v.size());
    *value = buf;
    *n = static_cast<int64_t>(v.size());
  })
}

void msr_free_buf(void* p) { std::free(p); }

msr_err msr_store_add(msr_store s, const char* key, int64_t delta, int64_t* out) {
  GUARD(*out = s->store->add(key, delta))
}

msr_err msr_store_check(msr_store s, const char* key, int* present) {
  GUARD(*present = s->store->check({key}) ? 1 : 0)
}

msr_err msr_pg_new(int backend, msr_store s, int rank, int size, int64_t timeout_ms, msr_pg* out) {
  GUARD({
    if (rank < 0 || rank >= size)
      throw std::invalid_argument("rank " + std::to_string(rank) + " outside a world of " + std::to_string(size));
    const auto timeout = std::chrono::milliseconds(timeout_ms);
    c10::intrusive_ptr<c10d::ProcessGroup> pg;
    switch (backend) {
      case MSR_GLOO: {
#ifdef MSR_WITH_GLOO
        auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
        // As PyTorch: GLOO_SOCKET_IFNAME names the interfaces (comma
        // separated), else the address the hostname resolves to.
        const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
        if (ifname != nullptr && ifname[0] != '\0') {
          std::stringstream names(ifname);
          std::string name;
          while (std::getline(names, name, ','))
            if (!name.empty()) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
        } else {
          opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
        }
        pg = c10::make_intrusive<c10d::ProcessGroupGloo>(s->store, rank, size, opts);
#else
        throw std::runtime_error(
            "this build has no Gloo: libtorch lacks ProcessGroupGloo or the build found no gloo headers "
            "(Debian: apt install libgloo-dev, then rebuild)");
#endif
        break;
      }
      case MSR_NCCL:
        pg = msr_nccl_new_group(s->store, rank, size, timeout);
        break;
      default:
        throw std::invalid_argument("unknown backend " + std::to_string(backend));
    }
    *out = new msr_pg_s{pg, rank, size, timeout};
  })
}

void msr_pg_free(msr_pg g) { delete g; }

msr_err msr_pg_broadcast(msr_pg g, const msr_tensor* ts, int n, int root, int64_t bucket_bytes) {
  PG_GUARD(g, {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> v;
    for (int i = 0; i < n; i++) v.push_back(T(ts[i]));
    for (auto [lo, hi] : bucket_ranges(v, bucket_bytes)) {
      std::vector<at::Tensor> flat{flat_of(v, lo, hi)};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      o.timeout = g->timeout;
      wait(g, g->pg->broadcast(flat, o));
      int64_t off = 0;
      for (size_t k = lo; k < hi; k++) {
        v[k].copy_(flat[0].narrow(0, off, v[k].numel()).view_as(v[k]));
        off += v[k].numel();
      }
    }
  })
}

msr_err msr_pg_allreduce(msr_pg g, msr_tensor t, int op) {
  PG_GUARD(g, {
    c10d::AllreduceOptions o;
    switch (op) {
      case MSR_REDUCE_SUM: o.reduceOp = c10d::ReduceOp::SUM; break;
      case MSR_REDUCE_MAX: o.reduceOp = c10d::ReduceOp::MAX; break;
      case MSR_REDUCE_MIN: o.reduceOp = c10d::ReduceOp::MIN; break;
      default: throw std::invalid_argument("unknown reduce op " + std::to_string(op));
    }
    o.timeout = g->timeout;
    std::vector<at::Tensor> v{T(t)};
    wait(g, g->pg->allreduce(v, o));
  })
}

}  // extern "C"

namespace {

// SumOverRanks is an all-reduce with a gradient: y = Σ_r x_r, so
// ∂L/∂x_r = Σ_q ∂L_q/∂y, another all-reduce, run in the backward pass.
struct SumOverRanks : public torch::autograd::Function<SumOverRanks> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, at::Tensor x, msr_pg_s* g) {
    ctx->saved_data["pg"] = reinterpret_cast<int64_t>(g);
    return all_reduce_sum(g, x.clone());
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad) {
    auto* g = reinterpret_cast<msr_pg_s*>(ctx->saved_data["pg"].toInt());
    try {
      return {all_reduce_sum(g, grad[0].clone()), at::Tensor()};
    } catch (const std::exception& e) {
      // The backward pass reports this through the engine, which knows no rank.
      throw std::runtime_error(rank_prefix(g) + "synchronising batch statistics' gradients: " + e.what());
    }
  }
  static at::Tensor all_reduce_sum(msr_pg_s* g, at::Tensor t) {
    at::NoGradGuard no_grad;
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = g->timeout;
    std::vector<at::Tensor> v{t.contiguous()};
    wait(g, g->pg->allreduce(v, o));
    return v[0];
  }
};

}  // namespace

extern "C" {

msr_err msr_pg_allreduce_differentiable(msr_pg g, msr_tensor t, msr_tensor* out) {
  PG_GUARD(g, { *out = new msr_tensor_s{SumOverRanks::apply(T(t), g)}; })
}

msr_err msr_pg_allgather_cat(msr_pg g, msr_tensor t, msr_tensor* out, int64_t* counts) {
  PG_GUARD(g, {
    std::vector<int64_t> n;
    at::Tensor all = allgather_cat(g, T(t), &n);
    for (int r = 0; r < g->size; r++) counts[r] = n[r];
    *out = new msr_tensor_s{all};
  })
}

msr_err msr_pg_barrier(msr_pg g) {
  PG_GUARD(g, {
    c10d::BarrierOptions o;
    o.timeout = g->timeout;
    wait(g, g->pg->barrier(o));
  })
}

// msr_pg_average_grads: see msr.h and average_into.
msr_err msr_pg_average_grads(msr_pg g, const msr_tensor* params, int n, int64_t bucket_bytes, double* flags,
                             int nflags) {
  PG_GUARD(g, {
    at::NoGradGuard no_grad;
    if (n == 0) throw std::invalid_argument("no parameters");
    std::vector<at::Tensor> ps;
    ps.reserve(n);
    for (int i = 0; i < n; i++) {
      const at::Tensor& p = T(params[i]);
      if (p.grad().defined() && p.grad().is_sparse())
        throw std::invalid_argument("parameter " + std::to_string(i) +
                                    " has a sparse gradient: gather its rows with msr_pg_allgather_cat");
      ps.push_back(p);
    }
    auto ranges = bucket_ranges(ps, bucket_bytes);
    std::vector<at::Tensor> flats;
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    c10d::AllreduceOptions o;
    o.timeout = g->timeout;
    // Each bucket is launched as soon as it is packed, so Gloo's threads
    // reduce one while this thread packs the next.
    for (size_t b = 0; b < ranges.size(); b++) {
      at::Tensor flat = grad_bucket(ps, ranges[b].first, ranges[b].second);
      if (b + 1 == ranges.size()) flat = at::cat({flat, presence_tail(ps, flags, nflags).to(flat.options())});
      flats.push_back(flat);
      std::vector<at::Tensor> v{flat};
      works.push_back(g->pg->allreduce(v, o));
    }
    for (auto& w : works) wait(g, w);
    average_into(ps, ranges, flats, g->size, flags, nflags);
  })
}

}  // extern "C"

#ifndef MSR_WITH_NCCL
int msr_nccl_compiled() { return 0; }

c10::intrusive_ptr<c10d::ProcessGroup> msr_nccl_new_group(const c10::intrusive_ptr<c10d::Store>&, int, int,
                                                          std::chrono::milliseconds) {
  throw std::runtime_error(
      "this build has no NCCL: build against a CUDA libtorch whose libtorch_cuda exports ProcessGroupNCCL, "
      "with nccl.h and the CUDA headers findable (see docs/distributed.md, NCCL), or use --set dist.backend=gloo");
}
#endif

// A gradient reducer overlaps the all-reduce with the backward pass, as
// PyTorch's DistributedDataParallel does: the parameters are cut into
// buckets in reverse order (the order the backward pass finishes them), a
// post-hook on each parameter's gradient accumulator notes it ready, and a
// bucket's all-reduce starts as soon as it and every bucket before it are
// ready, while autograd computes the rest. Buckets start strictly in order
// on every rank, so the collectives pair up whatever the timing; a
// parameter that has no gradient on some rank holds its bucket, and the
// buckets after it, until msr_reducer_finish, which starts the rest
// (zeros for the missing gradients) and the last bucket with the
// presence counts and the caller's flags, waits, and averages, with
// msr_pg_average_grads' semantics.

struct msr_reducer_s {
  msr_pg_s* g;
  std::vector<at::Tensor> params;  // bucket order
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators;
  std::vector<uintptr_t> hook_keys;
  std::vector<std::pair<size_t, size_t>> ranges;
  std::vector<size_t> bucket_of;
  std::vector<size_t> pending;
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  size_t launched = 0;
  bool armed = false;
  std::mutex mu;

  // launch starts bucket b's all-reduce; tail, for the last bucket, is appended.
  void launch(size_t b, const at::Tensor& tail) {
    at::Tensor flat = grad_bucket(params, ranges[b].first, ranges[b].second);
    if (tail.defined()) flat = at::cat({flat, tail.to(flat.options())});
    flats[b] = flat;
    std::vector<at::Tensor> v{flat};
    c10d::AllreduceOptions o;
    o.timeout = g->timeout;
    works[b] = g->pg->allreduce(v, o);
  }

  void ready(size_t k) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;
    size_t b = bucket_of[k];
    if (pending[b] > 0) pending[b]--;
    // The last bucket waits for finish: it carries the presence counts.
    while (launched + 1 < ranges.size() && pending[launched] == 0) {
      launch(launched, at::Tensor());
      launched++;
    }
  }
};

extern "C" {

msr_err msr_reducer_new(msr_pg g, const msr_tensor* params, int n, int64_t bucket_bytes, msr_reducer* out) {
  PG_GUARD(g, {
    if (n == 0) throw std::invalid_argument("no parameters");
    auto* r = new msr_reducer_s();
    r->g = g;
    for (int i = n - 1; i >= 0; i--) r->params.push_back(T(params[i]));
    r->ranges = bucket_ranges(r->params, bucket_bytes);
    r->bucket_of.resize(n);
    for (size_t b = 0; b < r->ranges.size(); b++)
      for (size_t k = r->ranges[b].first; k < r->ranges[b].second; k++) r->bucket_of[k] = b;
    r->pending.resize(r->ranges.size());
    r->flats.resize(r->ranges.size());
    r->works.resize(r->ranges.size());
    for (size_t k = 0; k < r->params.size(); k++) {
      const at::Tensor& p = r->params[k];
      if (!p.requires_grad() || !p.is_leaf()) {
        delete r;
        throw std::invalid_argument("parameter " + std::to_string(n - 1 - k) + " is not a leaf that requires grad");
      }
    }
    for (size_t k = 0; k < r->params.size(); k++) {
      const at::Tensor& p = r->params[k];
      auto acc = torch::autograd::impl::grad_accumulator(p);
      r->hook_keys.push_back(acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [r, k](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
            r->ready(k);
            return outputs;
          })));
      r->accumulators.push_back(acc);
    }
    *out = r;
  })
}

void msr_reducer_free(msr_reducer r) {
  if (r == nullptr) return;
  for (size_t k = 0; k < r->accumulators.size(); k++) r->accumulators[k]->del_post_hook(r->hook_keys[k]);
  delete r;
}

msr_err msr_reducer_begin(msr_reducer r) {
  PG_GUARD(r->g, {
    std::lock_guard<std::mutex> lock(r->mu);
    for (size_t b = 0; b < r->ranges.size(); b++) {
      r->pending[b] = r->ranges[b].second - r->ranges[b].first;
      r->flats[b] = at::Tensor();
      r->works[b].reset();
    }
    r->launched = 0;
    r->armed = true;
  })
}

msr_err msr_reducer_finish(msr_reducer r, double* flags, int nflags, int* started_early) {
  PG_GUARD(r->g, {
    at::NoGradGuard no_grad;
    std::lock_guard<std::mutex> lock(r->mu);
    if (!r->armed) throw std::logic_error("gradient reducer: finish without begin");
    r->armed = false;
    *started_early = static_cast<int>(r->launched);
    const size_t nb = r->ranges.size();
    at::Tensor tail = presence_tail(r->params, flags, nflags);
    for (; r->launched < nb; r->launched++) r->launch(r->launched, r->launched + 1 == nb ? tail : at::Tensor());
    for (auto& w : r->works) wait(r->g, w);
    average_into(r->params, r->ranges, r->flats, r->g->size, flags, nflags);
    for (size_t b = 0; b < nb; b++) {
      r->flats[b] = at::Tensor();
      r->works[b].reset();
    }
  })
}

}  // extern "C"
