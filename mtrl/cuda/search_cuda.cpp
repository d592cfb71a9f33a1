// Python binding of the CUDA tree kernels (search_kernels.cu): checks the tree tensors once,
// then each simulation is two asynchronous launches on torch's current stream. Argument checks
// read tensor metadata only, so a call never waits for the GPU (and can be captured in a CUDA
// graph).
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/csrc/utils/pybind.h>

#include <vector>

#include "search_kernels.cuh"

namespace {

constexpr int kNumFields = 23;

template <typename T>
T* device_data(const at::Tensor& t, at::ScalarType type, const char* name,
               const at::Device& device) {
  TORCH_CHECK(t.scalar_type() == type, name, " must be ", type, ", got ", t.scalar_type());
  TORCH_CHECK(t.is_cuda() && t.device() == device, name, " must be on ", device, ", got ",
              t.device());
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  return t.data_ptr<T>();
}

void check_launch(cudaError_t error, const char* what) {
  TORCH_CHECK(error == cudaSuccess, what, " failed: ", cudaGetErrorString(error));
}

class CudaSearch {
 public:
  CudaSearch(const std::vector<at::Tensor>& fields, int64_t algorithm, double pb_c_init,
             double pb_c_base, double c_visit, double c_scale)
      : keep_alive_(fields) {
    TORCH_CHECK(fields.size() == kNumFields, "expected ", kNumFields, " tree fields, got ",
                fields.size());
    TORCH_CHECK(algorithm == 0 || algorithm == 1, "unknown algorithm id ", algorithm);
    const at::Tensor& child_index = fields[9];
    TORCH_CHECK(child_index.dim() == 3, "child_index must be [B, N, A]");
    TORCH_CHECK(child_index.size(2) <= mtrl_cuda::kMaxActions, "the CUDA search supports at most ",
                mtrl_cuda::kMaxActions, " actions per tree, got ", child_index.size(2));
    device_ = child_index.device();
    TORCH_CHECK(device_.is_cuda(), "the CUDA search needs the tree on a CUDA device, got ",
                device_);
    t_.B = static_cast<int32_t>(child_index.size(0));
    t_.N = static_cast<int32_t>(child_index.size(1));
    t_.A = static_cast<int32_t>(child_index.size(2));
    t_.S = t_.N - 1;
    t_.algorithm = static_cast<int32_t>(algorithm);
    t_.pb_c_init = pb_c_init;
    t_.pb_c_base = pb_c_base;
    t_.c_visit = c_visit;
    t_.c_scale = c_scale;
    bind_fields(fields);
  }

  void select(int64_t sim) {
    check_sim(sim);
    const c10::cuda::CUDAGuard guard(device_);
    check_launch(mtrl_cuda::launch_select(t_, static_cast<int>(sim), stream()), "select");
  }

  void expand_and_backup(int64_t sim, const at::Tensor& logits_in, const at::Tensor& value_in,
                         const at::Tensor& reward_in, const at::Tensor& ids_in,
                         const c10::optional<at::Tensor>& terminal_in) {
    check_sim(sim);
    const c10::cuda::CUDAGuard guard(device_);
    // contiguous() may launch a copy on this stream; the kernel below is ordered after it.
    const at::Tensor logits = logits_in.contiguous(), value = value_in.contiguous();
    const at::Tensor reward = reward_in.contiguous(), ids = ids_in.contiguous();
    TORCH_CHECK(logits.numel() == int64_t{t_.B} * t_.A && value.numel() == t_.B &&
                    reward.numel() == t_.B && ids.numel() == t_.B,
                "model output has wrong sizes");
    mtrl_cuda::ModelView m{};
    m.logits = device_data<float>(logits, at::kFloat, "prior_logits", device_);
    m.value = device_data<float>(value, at::kFloat, "value", device_);
    m.reward = device_data<float>(reward, at::kFloat, "reward", device_);
    m.ids = device_data<int64_t>(ids, at::kLong, "embedding_id", device_);
    at::Tensor terminal;
    if (terminal_in.has_value()) {
      terminal = terminal_in->contiguous();
      TORCH_CHECK(terminal.numel() == t_.B, "terminal must have B entries");
      m.terminal = device_data<bool>(terminal, at::kBool, "terminal", device_);
    }
    check_launch(
        mtrl_cuda::launch_expand_backup(t_, m, static_cast<int>(sim), stream()), "expand_backup");
  }

 private:
  static cudaStream_t stream() { return c10::cuda::getCurrentCUDAStream().stream(); }

  void check_sim(int64_t sim) const {
    TORCH_CHECK(sim >= 0 && sim < t_.S, "simulation index ", sim, " out of range [0, ", t_.S,
                ")");
  }

  void bind_fields(const std::vector<at::Tensor>& f) {
    using at::kBool, at::kFloat, at::kInt, at::kLong;
    const at::Device& d = device_;
    t_.visits = device_data<int32_t>(f[0], kInt, "visits", d);
    t_.value_sum = device_data<float>(f[1], kFloat, "value_sum", d);
    t_.raw_value = device_data<float>(f[2], kFloat, "raw_value", d);
    t_.reward = device_data<float>(f[3], kFloat, "reward", d);
    t_.parent = device_data<int32_t>(f[4], kInt, "parent", d);
    t_.action = device_data<int32_t>(f[5], kInt, "action", d);
    t_.depth = device_data<int32_t>(f[6], kInt, "depth", d);
    t_.terminal = device_data<bool>(f[7], kBool, "terminal", d);
    t_.embedding_id = device_data<int64_t>(f[8], kLong, "embedding_id", d);
    t_.child_index = device_data<int32_t>(f[9], kInt, "child_index", d);
    t_.child_prior = device_data<float>(f[10], kFloat, "child_prior", d);
    t_.root_logits = device_data<float>(f[11], kFloat, "root_logits", d);
    t_.gumbel = device_data<float>(f[12], kFloat, "gumbel", d);
    t_.root_legal = device_data<bool>(f[13], kBool, "root_legal", d);
    t_.interior_legal = device_data<bool>(f[14], kBool, "interior_legal", d);
    t_.discount = device_data<float>(f[15], kFloat, "discount", d);
    t_.min_q = device_data<float>(f[16], kFloat, "min_q", d);
    t_.max_q = device_data<float>(f[17], kFloat, "max_q", d);
    t_.considered = device_data<int32_t>(f[18], kInt, "considered_visits", d);
    t_.leaf_depths = device_data<int32_t>(f[19], kInt, "leaf_depths", d);
    t_.out_embedding = device_data<int64_t>(f[20], kLong, "out_embedding", d);
    t_.out_action = device_data<int64_t>(f[21], kLong, "out_action", d);
    t_.sel_parent = device_data<int64_t>(f[22], kLong, "sel_parent", d);
    const int64_t nodes = int64_t{t_.B} * t_.N;
    TORCH_CHECK(f[0].numel() == nodes && f[10].numel() == nodes * t_.A, "node fields must be [B, N]");
    TORCH_CHECK(f[18].numel() == int64_t{t_.B} * t_.S, "considered_visits must be [B, S]");
    TORCH_CHECK(f[19].numel() == int64_t{t_.S} * t_.B, "leaf_depths must be [S, B]");
    for (int i = 20; i < kNumFields; ++i) TORCH_CHECK(f[i].numel() == t_.B, "outputs must be [B]");
  }

  std::vector<at::Tensor> keep_alive_;
  at::Device device_{at::kCUDA};
  mtrl_cuda::TreeView t_{};
};

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mtrl batched MCTS: CUDA tree kernels";
  py::class_<CudaSearch>(m, "CudaSearch")
      .def(py::init<const std::vector<at::Tensor>&, int64_t, double, double, double, double>())
      .def("select", &CudaSearch::select)
      .def("expand_and_backup", &CudaSearch::expand_and_backup);
}
