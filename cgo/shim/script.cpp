// script.cpp: TorchScript modules built from C (torch::jit::Module):
// tensors registered by dotted path, methods defined from TorchScript
// source, saved in the format torch.jit.load reads; and loaded modules run.
//
// A TorchScript attribute name cannot hold a dot, so a tensor registered as
// "backbone.layers.0.weight" lands in submodules backbone → layers → 0 as
// attribute weight: the module's state dict then has exactly that key, as
// nn.Module's would. Every module, submodules included, carries the
// "training" attribute that Module::train and Python's .eval() set, and
// every module's class lives in one compilation unit under a name of its
// own (classes of one saved file must not collide).

#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <cctype>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "internal.h"
#include "msr.h"

struct msr_script_s {
  torch::jit::Module module;
  std::shared_ptr<torch::jit::CompilationUnit> cu;  // null for a loaded module
};

namespace {

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  std::string cur;
  for (char c : path) {
    if (c == '.') {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  parts.push_back(cur);
  for (const auto& p : parts) {
    if (p.empty()) throw std::invalid_argument("script module: path \"" + path + "\" has an empty part");
  }
  return parts;
}

// class_name turns a module's path into a TorchScript class name: letters,
// digits and underscores, not starting with a digit.
std::string class_name(const std::string& path) {
  std::string out = "m";
  for (char c : path) out.push_back(std::isalnum(static_cast<unsigned char>(c)) ? c : '_');
  return out;
}

torch::jit::Module new_module(const std::shared_ptr<torch::jit::CompilationUnit>& cu, const std::string& path) {
  torch::jit::Module m(c10::QualifiedName("__torch__.msrtrain." + class_name(path)), cu, /*shouldMangle=*/true);
  m.register_attribute("training", c10::BoolType::get(), false);
  return m;
}

// submodule returns the module at parts[0..n) under root, creating what is missing.
torch::jit::Module submodule(msr_script_s* s, const std::vector<std::string>& parts, size_t n) {
  torch::jit::Module cur = s->module;
  std::string path;
  for (size_t i = 0; i < n; i++) {
    const std::string& name = parts[i];
    path += (i ? "." : "") + name;
    if (auto slot = cur.type()->findAttributeSlot(name)) {
      c10::IValue v = cur._ivalue()->getSlot(*slot);
      if (!v.isModule()) throw std::invalid_argument("script module: \"" + path + "\" is a tensor, not a module");
      cur = torch::jit::Module(v.toObject());
      continue;
    }
    torch::jit::Module child = new_module(s->cu, path);
    cur.register_module(name, child);
    cur = child;
  }
  return cur;
}

// TorchModule is `torch` in the source: the aten operators, as libtorch's
// native resolver has it, and the dtypes (torch.float32, torch.int64),
// which only Python's resolver knows otherwise.
struct TorchModule : public torch::jit::BuiltinModule {
  TorchModule() : BuiltinModule("aten") {}
  std::shared_ptr<torch::jit::SugaredValue> attr(const torch::jit::SourceRange& loc, torch::jit::GraphFunction& m,
                                                 const std::string& field) override {
    static const std::map<std::string, at::ScalarType> dtypes = {
        {"float32", at::kFloat}, {"float", at::kFloat}, {"float64", at::kDouble}, {"double", at::kDouble},
        {"int64", at::kLong},    {"long", at::kLong},   {"int32", at::kInt},      {"bool", at::kBool}};
    auto it = dtypes.find(field);
    if (it != dtypes.end()) return std::make_shared<torch::jit::SimpleValue>(m.graph()->insertConstant(it->second, loc));
    return BuiltinModule::attr(loc, m, field);
  }
};

// Resolver resolves `torch` (TorchModule) and Python's exception names, so
// that the source can raise ValueError("…") as scripted Python does.
struct Resolver : public torch::jit::Resolver {
  std::shared_ptr<torch::jit::SugaredValue> resolveValue(const std::string& name, torch::jit::GraphFunction& m,
                                                         const torch::jit::SourceRange& loc) override {
    if (name == "torch") return std::make_shared<TorchModule>();
    if (name == "Exception" || name == "ValueError" || name == "RuntimeError" || name == "IndexError" || name == "TypeError") {
      return std::make_shared<torch::jit::ExceptionValue>(name);
    }
    return nullptr;
  }
  c10::TypePtr resolveType(const std::string& name, const torch::jit::SourceRange& loc) override { return nullptr; }
};

}  // namespace

extern "C" {

msr_err msr_script_new(const char* name, msr_script* out) {
  GUARD({
    auto s = std::make_unique<msr_script_s>();
    s->cu = std::make_shared<torch::jit::CompilationUnit>();
    s->module = new_module(s->cu, name);
    *out = s.release();
  })
}

void msr_script_free(msr_script m) { delete m; }

msr_err msr_script_register(msr_script m, const char* path, msr_tensor t, int kind) {
  GUARD({
    if (m->cu == nullptr) throw std::invalid_argument("script module: a loaded module takes no new tensors");
    auto parts = split_path(path);
    torch::jit::Module owner = submodule(m, parts, parts.size() - 1);
    const std::string& leaf = parts.back();
    if (owner.type()->findAttributeSlot(leaf)) throw std::invalid_argument(std::string("script module: \"") + path + "\" is registered twice");
    // A copy without autograd history: the module owns its values.
    at::Tensor v = T(t).detach().clone();
    switch (kind) {
      case MSR_SCRIPT_PARAMETER: owner.register_parameter(leaf, v, /*is_buffer=*/false); break;
      case MSR_SCRIPT_BUFFER: owner.register_buffer(leaf, v); break;
      default: throw std::invalid_argument("script module: unknown slot kind " + std::to_string(kind));
    }
  })
}

msr_err msr_script_define(msr_script m, const char* src) {
  GUARD({
    if (m->cu == nullptr) throw std::invalid_argument("script module: a loaded module takes no new methods");
    m->module.define(src, std::make_shared<Resolver>());
  })
}

msr_err msr_script_save(msr_script m, const char* path, const char* const* extra_names, const char* const* extra_values,
                        const int64_t* extra_sizes, int n_extra) {
  GUARD({
    torch::jit::ExtraFilesMap extra;
    for (int i = 0; i < n_extra; i++) extra[extra_names[i]] = std::string(extra_values[i], static_cast<size_t>(extra_sizes[i]));
    m->module.save(path, extra);
  })
}

msr_err msr_script_load(const char* path, msr_script* out) {
  GUARD({
    auto s = std::make_unique<msr_script_s>();
    s->module = torch::jit::load(path, at::Device(at::kCPU));
    s->module.eval();
    *out = s.release();
  })
}

msr_err msr_script_extra_file(const char* path, const char* name, char** value, int64_t* size) {
  GUARD({
    torch::jit::ExtraFilesMap extra{{name, ""}};
    torch::jit::load(path, at::Device(at::kCPU), extra);
    const std::string& v = extra[name];
    *size = static_cast<int64_t>(v.size());
    *value = static_cast<char*>(std::malloc(v.size() + 1));
    if (*value == nullptr) throw std::bad_alloc();
    std::memcpy(*value, v.data(), v.size());
    (*value)[v.size()] = 0;
  })
}

msr_err msr_script_call(msr_script m, const char* method, const msr_tensor* in, int n, msr_tensor* out) {
  GUARD({
    std::vector<c10::IValue> args;
    args.reserve(n);
    for (int i = 0; i < n; i++) args.emplace_back(T(in[i]));
    torch::NoGradGuard no_grad;
    c10::IValue r = m->module.get_method(method)(std::move(args));
    if (!r.isTensor()) throw std::invalid_argument(std::string("script module: ") + method + " returned " + r.tagKind() + ", not a tensor");
    *out = new msr_tensor_s{r.toTensor()};
  })
}

msr_err msr_script_state(msr_script m, char** names, msr_tensor** tensors, int* n) {
  GUARD({
    std::vector<std::pair<std::string, at::Tensor>> all;
    for (const auto& p : m->module.named_parameters(true)) all.emplace_back(p.name, p.value);
    for (const auto& b : m->module.named_buffers(true)) all.emplace_back(b.name, b.value);
    std::string joined;
    for (const auto& p : all) joined += p.first + "\n";
    *names = static_cast<char*>(std::malloc(joined.size() + 1));
    *tensors = static_cast<msr_tensor*>(std::malloc(sizeof(msr_tensor) * (all.size() + 1)));
    if (*names == nullptr || *tensors == nullptr) {
      std::free(*names);
      std::free(*tensors);
      throw std::bad_alloc();
    }
    std::memcpy(*names, joined.c_str(), joined.size() + 1);
    for (size_t i = 0; i < all.size(); i++) (*tensors)[i] = new msr_tensor_s{all[i].second};
    *n = static_cast<int>(all.size());
  })
}

}  // extern "C"
