// optim.cpp: SGD, Adam, AdamW and Adagrad with PyTorch's update rules.
//
// The state lives here rather than in torch::optim so that every buffer can
// be exported by (group, parameter, slot) into a checkpoint and restored
// bit for bit, with one API across libtorch 1.13 and 2.x.

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <string>
#include <unordered_set>
#include <vector>

#include "msr.h"
#include "internal.h"

namespace {

struct ParamState {
  at::Tensor param;
  at::Tensor slot[2];  // SGD: momentum buffer; Adam(W): exp_avg, exp_avg_sq; Adagrad: sum
  int64_t step = 0;
};

struct Group {
  msr_optim_options opts;
  std::vector<ParamState> params;
  // A step costs about 8 ops per parameter, each ~1 µs of dispatch; for a
  // recommendation model's many small tensors that was a fifth of the whole
  // training step. So when a group's parameters are dense tensors of one
  // dtype and device that own their storage, they and their state become
  // views into flat buffers, and a step updates each run of consecutive
  // parameters that have gradients and the same step count with one set of
  // ops on the flat views. flat_param is undefined for a group kept as it is.
  at::Tensor flat_param;
  at::Tensor flat_slot[2];
  std::vector<int64_t> offset;  // parameter i is elements [offset[i], offset[i+1]) of the flat buffers
};

// owns_storage: t is the whole of its storage, so moving it into a flat
// buffer cannot detach it from a tensor it shares memory with (a slice, or
// another optimizer's flat buffer).
bool owns_storage(const at::Tensor& t) {
  return t.layout() == at::kStrided && t.is_contiguous() && t.storage_offset() == 0 &&
         t.storage().nbytes() == static_cast<size_t>(t.numel()) * t.element_size();
}

void flatten(Group& g, int nslots) {
  if (g.params.size() < 2) return;
  const at::Tensor& first = g.params[0].param;
  std::unordered_set<const void*> seen;
  int64_t total = 0;
  for (const auto& ps : g.params) {
    const at::Tensor& p = ps.param;
    if (!owns_storage(p) || p.scalar_type() != first.scalar_type() || p.device() != first.device() ||
        !seen.insert(p.unsafeGetTensorImpl()).second)
      return;
    total += p.numel();
  }
  g.flat_param = at::empty({total}, first.options());
  for (int k = 0; k < nslots; k++) g.flat_slot[k] = at::empty({total}, first.options());
  int64_t off = 0;
  for (auto& ps : g.params) {
    const int64_t n = ps.param.numel();
    at::Tensor view = g.flat_param.narrow(0, off, n).view(ps.param.sizes());
    view.copy_(ps.param);
    // set_data swaps the storage under the same tensor, so every handle to
    // the parameter (the model's, autograd's) now reads the flat buffer.
    ps.param.set_data(view);
    for (int k = 0; k < nslots; k++) {
      at::Tensor slot = g.flat_slot[k].narrow(0, off, n).view(ps.param.sizes());
      slot.copy_(ps.slot[k]);
      ps.slot[k] = slot;
    }
    g.offset.push_back(off);
    off += n;
  }
  g.offset.push_back(off);
}

int slots_for(int kind) {
  switch (kind) {
    case MSR_SGD: return 1;
    case MSR_ADAM:
    case MSR_ADAMW: return 2;
    case MSR_ADAGRAD: return 1;
  }
  return 0;
}

}  // namespace

struct msr_optim_s {
  int kind;
  std::vector<Group> groups;

  void step() {
    at::NoGradGuard no_grad;
    for (auto& g : groups) {
      const size_t n = g.params.size();
      for (size_t i = 0; i < n;) {
        ParamState& ps = g.params[i];
        if (!ps.param.grad().defined()) {  // PyTorch skips parameters that took no part
          i++;
          continue;
        }
        size_t j = i + 1;
        if (g.flat_param.defined() && !ps.param.grad().is_sparse()) {
          while (j < n && g.params[j].step == ps.step && g.params[j].param.grad().defined() &&
                 !g.params[j].param.grad().is_sparse())
            j++;
        }
        for (size_t k = i; k < j; k++) g.params[k].step++;
        if (j == i + 1) {
          update(g.opts, ps.param, ps.slot, ps.step, ps.param.grad());
        } else {
          std::vector<at::Tensor> grads;
          grads.reserve(j - i);
          for (size_t k = i; k < j; k++) grads.push_back(g.params[k].param.grad().reshape(-1));
          const int64_t start = g.offset[i], len = g.offset[j] - g.offset[i];
          at::Tensor slots[2];
          for (int k = 0; k < 2; k++)
            if (g.flat_slot[k].defined()) slots[k] = g.flat_slot[k].narrow(0, start, len);
          update(g.opts, g.flat_param.narrow(0, start, len), slots, ps.step, at::cat(grads));
        }
        i = j;
      }
    }
  }

  // update applies one step to param (one parameter, or a run of them in a
  // flat buffer) with its state slots, in place.
  void update(const msr_optim_options& o, const at::Tensor& param, at::Tensor* slot, int64_t step,
              const at::Tensor& grad) const {
    switch (kind) {
      case MSR_SGD: sgd(o, param, slot, step, grad); break;
      case MSR_ADAM:
      case MSR_ADAMW: adam(o, param, slot, step, grad, kind == MSR_ADAMW); break;
      case MSR_ADAGRAD: adagrad(o, param, slot, step, grad); break;
    }
  }

  static void sgd(const msr_optim_options& o, const at::Tensor& param, at::Tensor* slot, int64_t step,
                  const at::Tensor& grad) {
    at::Tensor d_p = o.weight_decay != 0 ? grad.add(param, o.weight_decay) : grad;
    if (o.momentum != 0) {
      at::Tensor& buf = slot[0];
      if (step == 1) {
        buf.copy_(d_p);
      } else {
        buf.mul_(o.momentum).add_(d_p, 1 - o.dampening);
      }
      d_p = o.nesterov ? d_p.add(buf, o.momentum) : buf;
    }
    param.add_(d_p, -o.lr);
  }

  static void adam(const msr_optim_options& o, const at::Tensor& param, at::Tensor* slot, int64_t step,
                   const at::Tensor& grad_in, bool decoupled) {
    at::Tensor grad = grad_in;
    if (o.weight_decay != 0) {
      if (decoupled) {
        param.mul_(1 - o.lr * o.weight_decay);
      } else {
        grad = grad.add(param, o.weight_decay);
      }
    }
    at::Tensor& exp_avg = slot[0];
    at::Tensor& exp_avg_sq = slot[1];
    exp_avg.mul_(o.beta1).add_(grad, 1 - o.beta1);
    exp_avg_sq.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
    double bias_correction1 = 1 - std::pow(o.beta1, static_cast<double>(step));
    double bias_correction2 = 1 - std::pow(o.beta2, static_cast<double>(step));
    double step_size = o.lr / bias_correction1;
    at::Tensor denom = exp_avg_sq.sqrt().div_(std::sqrt(bias_correction2)).add_(o.eps);
    param.addcdiv_(exp_avg, denom, -step_size);
  }

  static void adagrad(const msr_optim_options& o, const at::Tensor& param, at::Tensor* slot, int64_t step,
                      const at::Tensor& grad_in) {
    at::Tensor grad = o.weight_decay != 0 ? grad_in.add(param, o.weight_decay) : grad_in;
    double clr = o.lr / (1 + static_cast<double>(step - 1) * o.lr_decay);
    at::Tensor& sum = slot[0];
    sum.addcmul_(grad, grad, 1);
    at::Tensor std = sum.sqrt().add_(o.eps);
    param.addcdiv_(grad, std, -clr);
  }

  Group& group_at(int group) {
    if (group < 0 || group >= static_cast<int>(groups.size()))
      throw std::out_of_range("optimizer has no group " + std::to_string(group));
    return groups[group];
  }

  ParamState& at(int group, int param) {
    auto& ps = group_at(group).params;
    if (param < 0 || param >= static_cast<int>(ps.size()))
      throw std::out_of_range("optimizer group " + std::to_string(group) + " has no parameter " + std::to_string(param));
    return ps[param];
  }
};

extern "C" {

msr_err msr_optim_new(int kind, msr_optim* out) {
  if (slots_for(kind) == 0) return make_err("", ("unknown optimizer kind " + std::to_string(kind)).c_str());
  *out = new msr_optim_s{kind, {}};
  return nullptr;
}

void msr_optim_free(msr_optim o) { delete o; }

msr_err msr_optim_add_group(msr_optim o, const msr_tensor* params, int n, msr_optim_options opts) {
  GUARD({
    at::NoGradGuard no_grad;
    Group g{opts, {}};
    for (int i = 0; i < n; i++) {
      ParamState ps;
      ps.param = params[i]->t;
      if (!ps.param.requires_grad()) throw std::invalid_argument("optimizer parameter " + std::to_string(i) + " does not require grad");
      for (int k = 0; k < slots_for(o->kind); k++) {
        ps.slot[k] = at::zeros_like(ps.param, at::MemoryFormat::Contiguous);
        if (o->kind == MSR_ADAGRAD) ps.slot[k].fill_(opts.initial_accumulator);
      }
      g.params.push_back(std::move(ps));
    }
    flatten(g, slots_for(o->kind));
    o->groups.push_back(std::move(g));
  })
}

msr_err msr_optim_step(msr_optim o) { GUARD(o->step()) }

msr_err msr_optim_zero_grad(msr_optim o) {
  GUARD({
    for (auto& g : o->groups)
      for (auto& ps : g.params)
        if (ps.param.grad().defined()) ps.param.mutable_grad().reset();
  })
}

msr_err msr_optim_set_lr(msr_optim o, int group, double lr) {
  GUARD(o->group_at(group).opts.lr = lr)
}

msr_err msr_optim_get_lr(msr_optim o, int group, double* lr) {
  GUARD(*lr = o->group_at(group).opts.lr)
}

msr_err msr_optim_state(msr_optim o, int group, int param, int k, msr_tensor* out) {
  GUARD({
    ParamState& ps = o->at(group, param);
    if (k < 0 || k >= slots_for(o->kind)) throw std::out_of_range("optimizer state slot " + std::to_string(k));
    *out = new msr_tensor_s{ps.slot[k]};
  })
}

msr_err msr_optim_group_flat(msr_optim o, int group, int* flat) { GUARD(*flat = o->group_at(group).flat_param.defined() ? 1 : 0) }

msr_err msr_optim_get_step(msr_optim o, int group, int param, int64_t* step) { GUARD(*step = o->at(group, param).step) }

msr_err msr_optim_set_step(msr_optim o, int group, int param, int64_t step) { GUARD(o->at(group, param).step = step) }

}  // extern "C"
