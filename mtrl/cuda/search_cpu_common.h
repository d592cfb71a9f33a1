// What the C++ search kernels (search_cpu.cpp) and the native root summary
// (search_cpu_summary.cpp) share: one view of the tree tensors and one copy of the numerics,
// so both read the same fields and round exactly like the torch reference
// (mtrl/search/numerics.py, mtrl/search/gumbel.py).
#pragma once

#include <ATen/core/Tensor.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace mtrl {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

template <typename T>
T* data_of(const at::Tensor& t, at::ScalarType type, const char* name) {
  TORCH_CHECK(t.scalar_type() == type, name, " must be ", type, ", got ", t.scalar_type());
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(), name,
              " must be a contiguous CPU tensor");
  return t.data_ptr<T>();
}

// Raw pointers into the 20 tree tensors of mtrl/search/tree.py, given in the order of
// mtrl/cuda/cpu_backend.tree_fields and checked once; Python keeps owning the tensors.
struct TreeView {
  explicit TreeView(const std::vector<at::Tensor>& fields) {
    TORCH_CHECK(fields.size() >= 20, "expected the 20 tree fields, got ", fields.size());
    TORCH_CHECK(fields[9].dim() == 3, "child_index must be [B, N, A]");
    B_ = fields[9].size(0);
    N_ = fields[9].size(1);
    A_ = fields[9].size(2);
    S_ = N_ - 1;
    using at::kBool, at::kFloat, at::kInt, at::kLong;
    visits_ = data_of<int32_t>(fields[0], kInt, "visits");
    value_sum_ = data_of<float>(fields[1], kFloat, "value_sum");
    raw_value_ = data_of<float>(fields[2], kFloat, "raw_value");
    reward_ = data_of<float>(fields[3], kFloat, "reward");
    parent_ = data_of<int32_t>(fields[4], kInt, "parent");
    action_ = data_of<int32_t>(fields[5], kInt, "action");
    depth_ = data_of<int32_t>(fields[6], kInt, "depth");
    terminal_ = data_of<bool>(fields[7], kBool, "terminal");
    embedding_id_ = data_of<int64_t>(fields[8], kLong, "embedding_id");
    child_index_ = data_of<int32_t>(fields[9], kInt, "child_index");
    child_prior_ = data_of<float>(fields[10], kFloat, "child_prior");
    root_logits_ = data_of<float>(fields[11], kFloat, "root_logits");
    gumbel_ = data_of<float>(fields[12], kFloat, "gumbel");
    root_legal_ = data_of<bool>(fields[13], kBool, "root_legal");
    interior_legal_ = data_of<bool>(fields[14], kBool, "interior_legal");
    discount_ = data_of<float>(fields[15], kFloat, "discount");
    min_q_ = data_of<float>(fields[16], kFloat, "min_q");
    max_q_ = data_of<float>(fields[17], kFloat, "max_q");
    considered_ = data_of<int32_t>(fields[18], kInt, "considered_visits");
    leaf_depths_ = data_of<int32_t>(fields[19], kInt, "leaf_depths");
    const int64_t sizes[20] = {B_ * N_, B_ * N_, B_ * N_, B_ * N_, B_ * N_, B_ * N_, B_ * N_,
                               B_ * N_, B_ * N_, B_ * N_ * A_, B_ * N_ * A_, B_ * A_, B_ * A_,
                               B_ * A_, B_ * A_, B_, B_, B_, B_ * S_, S_ * B_};
    for (int i = 0; i < 20; ++i) {
      TORCH_CHECK(fields[i].numel() == sizes[i], "tree field ", i, " has ", fields[i].numel(),
                  " entries, expected ", sizes[i]);
    }
  }

  int64_t node_at(int64_t b, int64_t node) const { return b * N_ + node; }

  // Child Q = reward + gamma * mean value, as float32 (identical to the reference's q).
  float child_q(int64_t b, int32_t child) const {
    const int64_t i = node_at(b, child);
    return reward_[i] + discount_[b] * (value_sum_[i] / static_cast<float>(visits_[i]));
  }

  int64_t B_ = 0, N_ = 0, A_ = 0, S_ = 0;
  int32_t *visits_, *parent_, *action_, *depth_, *child_index_, *considered_, *leaf_depths_;
  float *value_sum_, *raw_value_, *reward_, *child_prior_, *root_logits_, *gumbel_;
  float *discount_, *min_q_, *max_q_;
  bool *terminal_, *root_legal_, *interior_legal_;
  int64_t* embedding_id_;
};

// (q - lo) / (hi - lo) clamped to [0, 1]; 0 until the tree has two distinct values.
inline double normalize(double q, float lo_f, float hi_f) {
  const double lo = lo_f, hi = hi_f;
  if (!(hi > lo)) return 0.0;
  return std::min(std::max((q - lo) / (hi - lo), 0.0), 1.0);
}

// What Gumbel's v_mix needs from one node's children, summed left to right like
// numerics.ordered_sum: visit counts, and prior * Q and prior over the visited children.
struct ChildSums {
  int32_t max_n = 0;
  double sum_n = 0.0, sum_pq = 0.0, sum_p = 0.0;
};

// The paper's v_mix (reference: gumbel.mixed_value): the network value mixed with the
// prior-weighted Q of the visited children.
inline double mixed_value(double raw, const ChildSums& sums) {
  if (sums.sum_n > 0.0 && sums.sum_p > 0.0) {
    return (raw + sums.sum_n * (sums.sum_pq / sums.sum_p)) / (1.0 + sums.sum_n);
  }
  return raw;
}

}  // namespace mtrl
