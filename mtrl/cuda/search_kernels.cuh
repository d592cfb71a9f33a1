// CUDA tree kernels of the batched search (mtrl/search): plain CUDA C++, no torch headers, so
// the file compiles with nvcc alone (tests compile-check it on machines without a GPU).
//
// The kernels mirror mtrl/cuda/search_cpu.cpp and the torch reference (mtrl/search/
// reference.py) operation by operation: float32 tree updates, float64 selection maths, sums in
// action order, first-maximum argmax. Build with --fmad=false so no multiply-add is fused.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace mtrl_cuda {

// Raw device pointers into the [B, N] / [B, N, A] tree tensors owned by the Python Tree.
struct TreeView {
  int32_t* visits;           // [B, N]
  float* value_sum;          // [B, N]
  float* raw_value;          // [B, N]
  float* reward;             // [B, N]
  int32_t* parent;           // [B, N]
  int32_t* action;           // [B, N]
  int32_t* depth;            // [B, N]
  bool* terminal;            // [B, N]
  int64_t* embedding_id;     // [B, N]
  int32_t* child_index;      // [B, N, A]
  float* child_prior;        // [B, N, A]
  const float* root_logits;  // [B, A]
  const float* gumbel;       // [B, A]
  const bool* root_legal;    // [B, A]
  const bool* interior_legal;  // [B, A]
  const float* discount;     // [B]
  float* min_q;              // [B]
  float* max_q;              // [B]
  const int32_t* considered;  // [B, S]
  int32_t* leaf_depths;      // [S, B]
  int64_t* out_embedding;    // [B] parent embedding id handed to the model
  int64_t* out_action;       // [B]
  int64_t* sel_parent;       // [B] parent node of the edge to expand
  int32_t B, N, A, S;
  int32_t algorithm;  // 0 MuZero, 1 Gumbel MuZero
  double pb_c_init, pb_c_base, c_visit, c_scale;
};

// One batched model step (device pointers; terminal may be null).
struct ModelView {
  const float* logits;  // [B, A]
  const float* value;   // [B]
  const float* reward;  // [B]
  const int64_t* ids;   // [B]
  const bool* terminal;  // [B] or nullptr
};

// Largest action axis the kernels accept (each lane of a warp holds up to 8 actions).
constexpr int kMaxActions = 256;

// Asynchronous launches on `stream`; they return the launch error (never synchronise).
cudaError_t launch_select(const TreeView& tree, int sim, cudaStream_t stream);
cudaError_t launch_expand_backup(const TreeView& tree, const ModelView& model, int sim,
                                 cudaStream_t stream);

}  // namespace mtrl_cuda
