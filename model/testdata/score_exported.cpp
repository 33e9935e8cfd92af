// Scores encoded batches with exported msrtrain models, using nothing but
// libtorch's torch::jit::load: the C++ half of model/script_test.go. It
// reads the manifest that score_exported.py reads (see there).
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/serialization/import.h>


#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

static at::Tensor take(const std::vector<char>& raw, size_t& offset, int64_t count, at::ScalarType dtype, size_t size) {
  at::Tensor t = at::empty({count}, at::TensorOptions().dtype(dtype));
  std::memcpy(t.data_ptr(), raw.data() + offset, count * size);
  offset += count * size;
  return t;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: score_exported MANIFEST SUFFIX\n";
    return 2;
  }
  at::set_num_threads(1);
  torch::jit::Module model;
  std::ifstream manifest(argv[1]);
  std::string line;
  while (std::getline(manifest, line)) {
    std::istringstream in(line);
    std::string cmd;
    if (!(in >> cmd)) continue;
    if (cmd == "model") {
      std::string path;
      in >> path;
      model = torch::jit::load(path);
      model.eval();
    } else if (cmd == "rebuild") {
      at::NoGradGuard no_grad;
      for (const auto& b : model.named_buffers()) {
        if (b.name.rfind("meta.cache.", 0) == 0) b.value.zero_();
      }
      model.get_method("rebuild_meta_cache")({});
    } else if (cmd == "case") {
      std::string path, out;
      int64_t rows, fields, numeric;
      in >> path >> rows >> fields >> numeric >> out;
      std::ifstream f(path, std::ios::binary);
      std::vector<char> raw((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      size_t off = 0;
      at::Tensor cat = take(raw, off, rows * fields, at::kLong, 8).view({rows, fields});
      at::Tensor num = take(raw, off, rows * numeric, at::kFloat, 4).view({rows, numeric});
      at::Tensor scenario = take(raw, off, rows, at::kLong, 8);
      at::Tensor knowledge_row = take(raw, off, rows, at::kLong, 8);
      at::NoGradGuard no_grad;
      at::Tensor p = model.forward({cat, num, scenario, knowledge_row}).toTensor().contiguous();
      std::ofstream o(out + argv[2], std::ios::binary);
      o.write(static_cast<const char*>(p.data_ptr()), p.numel() * sizeof(float));
    } else {
      std::cerr << "manifest: unknown command " << cmd << "\n";
      return 2;
    }
  }
  return 0;
}
