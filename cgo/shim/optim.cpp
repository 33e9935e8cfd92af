// optim.cpp: SGD, Adam, AdamW and Adagrad with PyTorch's update rules.
//
// The state lives here rather than in torch::optim so that every buffer can
// be exported by (group, parameter, slot) into a checkpoint and restored
// bit for bit, with one API across libtorch 1.13 and 2.x.

#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <string>
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
};

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
      for (auto& ps : g.params) {
        const at::Tensor& grad_ref = ps.param.grad();
        if (!grad_ref.defined()) continue;  // PyTorch skips parameters that took no part
        ps.step++;
        switch (kind) {
          case MSR_SGD: sgd(g.opts, ps, grad_ref); break;
          case MSR_ADAM:
          case MSR_ADAMW: adam(g.opts, ps, grad_ref, kind == MSR_ADAMW); break;
          case MSR_ADAGRAD: adagrad(g.opts, ps, grad_ref); break;
        }
      }
    }
  }

  static void sgd(const msr_optim_options& o, ParamState& ps, const at::Tensor& grad) {
    at::Tensor d_p = o.weight_decay != 0 ? grad.add(ps.param, o.weight_decay) : grad;
    if (o.momentum != 0) {
      at::Tensor& buf = ps.slot[0];
      if (ps.step == 1) {
        buf.copy_(d_p);
      } else {
        buf.mul_(o.momentum).add_(d_p, 1 - o.dampening);
      }
      d_p = o.nesterov ? d_p.add(buf, o.momentum) : buf;
    }
    ps.param.add_(d_p, -o.lr);
  }

  static void adam(const msr_optim_options& o, ParamState& ps, const at::Tensor& grad_in, bool decoupled) {
    at::Tensor grad = grad_in;
    if (o.weight_decay != 0) {
      if (decoupled) {
        ps.param.mul_(1 - o.lr * o.weight_decay);
      } else {
        grad = grad.add(ps.param, o.weight_decay);
      }
    }
    at::Tensor& exp_avg = ps.slot[0];
    at::Tensor& exp_avg_sq = ps.slot[1];
    exp_avg.mul_(o.beta1).add_(grad, 1 - o.beta1);
    exp_avg_sq.mul_(o.beta2).addcmul_(grad, grad, 1 - o.beta2);
    double bias_correction1 = 1 - std::pow(o.beta1, static_cast<double>(ps.step));
    double bias_correction2 = 1 - std::pow(o.beta2, static_cast<double>(ps.step));
    double step_size = o.lr / bias_correction1;
    at::Tensor denom = exp_avg_sq.sqrt().div_(std::sqrt(bias_correction2)).add_(o.eps);
    ps.param.addcdiv_(exp_avg, denom, -step_size);
  }

  static void adagrad(const msr_optim_options& o, ParamState& ps, const at::Tensor& grad_in) {
    at::Tensor grad = o.weight_decay != 0 ? grad_in.add(ps.param, o.weight_decay) : grad_in;
    double clr = o.lr / (1 + static_cast<double>(ps.step - 1) * o.lr_decay);
    at::Tensor& sum = ps.slot[0];
    sum.addcmul_(grad, grad, 1);
    at::Tensor std = sum.sqrt().add_(o.eps);
    ps.param.addcdiv_(grad, std, -clr);
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

msr_err msr_optim_get_step(msr_optim o, int group, int param, int64_t* step) { GUARD(*step = o->at(group, param).step) }

msr_err msr_optim_set_step(msr_optim o, int group, int param, int64_t step) { GUARD(o->at(group, param).step = step) }

}  // extern "C"
