// CUDA kernels of the batched search: one warp per tree, lane l holds actions l, l + 32, ...
// (K of them), so the child fields of a node are read with coalesced loads. See
// search_kernels.cuh for the contract; search_cpu.cpp is the line-by-line CPU twin.
//
// Sums whose rounding matters (v_mix's prior-weighted Q, Gumbel's improved-policy total, the
// softmax total) are taken in action order, every lane adding the same shuffled values, so
// each lane ends with the sequential sum of the CPU backends; maxima and integer sums are
// order-free and use butterfly reductions. Nothing here synchronises with the host.
#include "search_kernels.cuh"

#include <cmath>
#include <cstdint>

namespace mtrl_cuda {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;
constexpr int kWarpsPerBlock = 4;

__device__ inline int64_t node_at(const TreeView& t, int b, int node) {
  return static_cast<int64_t>(b) * t.N + node;
}

// Child Q = reward + gamma * mean value, in float32 like the reference.
__device__ inline float child_q(const TreeView& t, int b, int child) {
  const int64_t i = node_at(t, b, child);
  return t.reward[i] + t.discount[b] * (t.value_sum[i] / static_cast<float>(t.visits[i]));
}

// (q - lo) / (hi - lo) clamped to [0, 1]; 0 until the tree has two distinct values.
__device__ inline double normalize(double q, float lo_f, float hi_f) {
  const double lo = lo_f, hi = hi_f;
  if (!(hi > lo)) return 0.0;
  return fmin(fmax((q - lo) / (hi - lo), 0.0), 1.0);
}

__device__ inline int warp_max_int(int x) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    x = max(x, __shfl_xor_sync(kFullMask, x, offset));
  }
  return x;
}

__device__ inline int warp_sum_int(int x) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    x += __shfl_xor_sync(kFullMask, x, offset);
  }
  return x;
}

__device__ inline double warp_max_double(double x) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    x = fmax(x, __shfl_xor_sync(kFullMask, x, offset));
  }
  return x;
}

// The first maximum (lowest action on ties), like torch.argmax; every lane gets the result.
__device__ inline int warp_argmax(double score, int action) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) {
    const double other_score = __shfl_xor_sync(kFullMask, score, offset);
    const int other_action = __shfl_xor_sync(kFullMask, action, offset);
    if (other_score > score || (other_score == score && other_action < action)) {
      score = other_score;
      action = other_action;
    }
  }
  return action;
}

// Sum of x over actions 0..A-1 strictly in action order (the CPU loops' rounding).
template <int K>
__device__ inline double ordered_sum(const double (&x)[K], int num_actions) {
  double total = 0.0;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    for (int lane = 0; lane < kWarp; ++lane) {
      if (k * kWarp + lane >= num_actions) return total;  // uniform across the warp
      total += __shfl_sync(kFullMask, x[k], lane);
    }
  }
  return total;
}

// Argmax over this lane's K scores (first maximum), then across the warp. Lanes' padding
// entries (a >= A) carry action A so they never win a tie against a real action.
template <int K>
__device__ inline int argmax_actions(const double (&score)[K], int lane, int num_actions) {
  double best = -INFINITY;
  int best_action = num_actions;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    if (a < num_actions && (best_action == num_actions || score[k] > best)) {
      best = score[k];
      best_action = a;
    }
  }
  return warp_argmax(best, best_action);
}

// Visits (0 where unexpanded) and Q of the children of `node`, per lane.
template <int K>
struct Children {
  int visits[K];
  float q[K];
  float prior[K];
};

template <int K>
__device__ inline Children<K> gather_children(const TreeView& t, int b, int node, int lane) {
  Children<K> c;
  const int64_t row = node_at(t, b, node) * t.A;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    const int child = a < t.A ? t.child_index[row + a] : -1;
    c.visits[k] = child < 0 ? 0 : t.visits[node_at(t, b, child)];
    c.q[k] = c.visits[k] > 0 ? child_q(t, b, child) : 0.0f;
    c.prior[k] = a < t.A ? t.child_prior[row + a] : 0.0f;
  }
  return c;
}

// Sum and maximum of the children's visits over the whole warp (every lane gets them).
template <int K>
__device__ inline int visit_total(const Children<K>& c) {
  int n = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) n += c.visits[k];
  return warp_sum_int(n);
}

template <int K>
__device__ inline int visit_max(const Children<K>& c) {
  int n = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) n = max(n, c.visits[k]);
  return warp_max_int(n);
}

// Gumbel's v_mix: the network value mixed with the prior-weighted Q of visited children.
template <int K>
__device__ inline double mixed_value(const TreeView& t, int b, int node, const Children<K>& c,
                                     int sum_n) {
  double pq[K], p[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const bool visited = c.visits[k] > 0;
    pq[k] = visited ? static_cast<double>(c.prior[k]) * static_cast<double>(c.q[k]) : 0.0;
    p[k] = visited ? static_cast<double>(c.prior[k]) : 0.0;
  }
  const double sum_pq = ordered_sum<K>(pq, t.A), sum_p = ordered_sum<K>(p, t.A);
  const double raw = t.raw_value[node_at(t, b, node)];
  const double n = sum_n;
  if (n > 0.0 && sum_p > 0.0) return (raw + n * (sum_pq / sum_p)) / (1.0 + n);
  return raw;
}

template <int K>
__device__ int puct_action(const TreeView& t, int b, int node, const bool* legal, int lane) {
  const Children<K> c = gather_children<K>(t, b, node, lane);
  const double parent = t.visits[node_at(t, b, node)];
  const double scale = t.pb_c_init + log((parent + t.pb_c_base + 1.0) / t.pb_c_base);
  const double sqrt_parent = sqrt(parent);
  double score[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    score[k] = -INFINITY;
    if (a < t.A && legal[a]) {
      const double value =
          c.visits[k] > 0 ? normalize(c.q[k], t.min_q[b], t.max_q[b]) : 0.0;
      score[k] = value + scale * static_cast<double>(c.prior[k]) * sqrt_parent /
                             (1.0 + static_cast<double>(c.visits[k]));
    }
  }
  return argmax_actions<K>(score, lane, t.A);
}

// Non-root Gumbel rule: argmax pi'(a) - N(a) / (1 + sum N), pi' ~ prior * exp(sigma - s_mix).
template <int K>
__device__ int gumbel_interior_action(const TreeView& t, int b, int node, const bool* legal,
                                      int lane) {
  const Children<K> c = gather_children<K>(t, b, node, lane);
  const int sum_n = visit_total<K>(c), max_n = visit_max<K>(c);
  double score[K];
  if (sum_n == 0) {  // nothing visited: the first legal maximum of the prior
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int a = k * kWarp + lane;
      score[k] = a < t.A && legal[a] ? static_cast<double>(c.prior[k]) : -INFINITY;
    }
    return argmax_actions<K>(score, lane, t.A);
  }
  const double scale = (t.c_visit + max_n) * t.c_scale;
  const double sigma_mix =
      scale * normalize(mixed_value<K>(t, b, node, c, sum_n), t.min_q[b], t.max_q[b]);
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    double weight = 1.0;
    if (c.visits[k] > 0) {
      weight = exp(scale * normalize(c.q[k], t.min_q[b], t.max_q[b]) - sigma_mix);
    }
    score[k] = a < t.A && legal[a] ? static_cast<double>(c.prior[k]) * weight : 0.0;
  }
  const double inv_total = 1.0 / ordered_sum<K>(score, t.A);
  const double inv_visits = 1.0 / (1.0 + static_cast<double>(sum_n));
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    score[k] = a < t.A && legal[a] ? score[k] * inv_total - c.visits[k] * inv_visits
                                   : -INFINITY;
  }
  return argmax_actions<K>(score, lane, t.A);
}

// Root: g + logits + sigma(completed Q) over legal actions whose visit count is this
// simulation's considered visit (sequential halving).
template <int K>
__device__ int gumbel_root_action(const TreeView& t, int b, int sim, int lane) {
  const Children<K> c = gather_children<K>(t, b, 0, lane);
  const int sum_n = visit_total<K>(c), max_n = visit_max<K>(c);
  const int considered = t.considered[static_cast<int64_t>(b) * t.S + sim];
  const double scale = (t.c_visit + max_n) * t.c_scale;
  double sigma_mix = 0.0;
  if (considered == 0) {
    sigma_mix = scale * normalize(mixed_value<K>(t, b, 0, c, sum_n), t.min_q[b], t.max_q[b]);
  }
  double score[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    score[k] = -INFINITY;
    const int64_t i = static_cast<int64_t>(b) * t.A + a;
    if (a < t.A && t.root_legal[i] && c.visits[k] == considered) {
      const double sigma =
          c.visits[k] > 0 ? scale * normalize(c.q[k], t.min_q[b], t.max_q[b]) : sigma_mix;
      score[k] = static_cast<double>(t.gumbel[i]) + static_cast<double>(t.root_logits[i]) + sigma;
    }
  }
  return argmax_actions<K>(score, lane, t.A);
}

template <int K>
__device__ int choose_action(const TreeView& t, int b, int node, int sim, int lane) {
  const bool* legal = (node == 0 ? t.root_legal : t.interior_legal) + static_cast<int64_t>(b) * t.A;
  if (t.algorithm == 0) return puct_action<K>(t, b, node, legal, lane);
  if (node == 0) return gumbel_root_action<K>(t, b, sim, lane);
  return gumbel_interior_action<K>(t, b, node, legal, lane);
}

template <int K>
__global__ void select_kernel(TreeView t, int sim) {
  const int b = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (b >= t.B) return;  // whole warps leave together: B is per warp
  int node = 0;
  while (true) {
    const int a = choose_action<K>(t, b, node, sim, lane);
    const int child = t.child_index[node_at(t, b, node) * t.A + a];
    if (child < 0) {
      if (lane == 0) {
        t.sel_parent[b] = node;
        t.out_action[b] = a;
        t.out_embedding[b] = t.embedding_id[node_at(t, b, node)];
      }
      return;
    }
    node = child;
  }
}

// Softmax over the interior-legal actions in float64, stored as float32.
template <int K>
__device__ void write_priors(const TreeView& t, const float* logits, int b, int64_t node,
                             int lane) {
  const bool* legal = t.interior_legal + static_cast<int64_t>(b) * t.A;
  double top = -INFINITY;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    if (a < t.A && legal[a]) top = fmax(top, static_cast<double>(logits[a]));
  }
  top = warp_max_double(top);
  double exps[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    exps[k] = a < t.A && legal[a] ? exp(static_cast<double>(logits[a]) - top) : 0.0;
  }
  const double total = ordered_sum<K>(exps, t.A);
  float* prior = t.child_prior + node * t.A;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int a = k * kWarp + lane;
    if (a < t.A) prior[a] = static_cast<float>(exps[k] / total);
  }
}

// Add the new leaf's value along its path; only this tree's warp touches its bounds.
__device__ void backup_tree(const TreeView& t, int b, int leaf) {
  const float gamma = t.discount[b];
  float ret = t.raw_value[node_at(t, b, leaf)];
  float lo = t.min_q[b], hi = t.max_q[b];
  for (int node = leaf; node >= 0; node = t.parent[node_at(t, b, node)]) {
    const int64_t i = node_at(t, b, node);
    t.visits[i] += 1;
    t.value_sum[i] += ret;
    const float r = t.reward[i];
    if (node != 0) {
      const float q = r + gamma * (t.value_sum[i] / static_cast<float>(t.visits[i]));
      lo = fminf(lo, q);
      hi = fmaxf(hi, q);
    }
    ret = r + gamma * ret;
  }
  t.min_q[b] = lo;
  t.max_q[b] = hi;
}

template <int K>
__global__ void expand_backup_kernel(TreeView t, ModelView m, int sim) {
  const int b = blockIdx.x * kWarpsPerBlock + threadIdx.x / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (b >= t.B) return;
  const int parent = static_cast<int>(t.sel_parent[b]);
  const int a = static_cast<int>(t.out_action[b]);
  const int64_t p = node_at(t, b, parent), n = node_at(t, b, sim + 1);
  write_priors<K>(t, m.logits + static_cast<int64_t>(b) * t.A, b, n, lane);
  if (lane != 0) return;
  const bool parent_terminal = t.terminal[p];
  const bool terminal = (m.terminal != nullptr && m.terminal[b]) || parent_terminal;
  t.terminal[n] = terminal;
  t.raw_value[n] = terminal ? 0.0f : m.value[b];
  t.reward[n] = parent_terminal ? 0.0f : m.reward[b];
  t.parent[n] = parent;
  t.action[n] = a;
  t.depth[n] = t.depth[p] + 1;
  t.embedding_id[n] = m.ids[b];
  t.child_index[p * t.A + a] = sim + 1;
  t.leaf_depths[static_cast<int64_t>(sim) * t.B + b] = t.depth[n];
  backup_tree(t, b, sim + 1);
}

// K = actions per lane: the smallest of 1, 2, 4, 8 that covers A.
template <template <int> class Launch, typename... Args>
cudaError_t dispatch(int num_actions, Args... args) {
  if (num_actions <= kWarp) return Launch<1>::run(args...);
  if (num_actions <= 2 * kWarp) return Launch<2>::run(args...);
  if (num_actions <= 4 * kWarp) return Launch<4>::run(args...);
  if (num_actions <= kMaxActions) return Launch<8>::run(args...);
  return cudaErrorInvalidValue;
}

dim3 grid_for(int batch) { return dim3((batch + kWarpsPerBlock - 1) / kWarpsPerBlock); }

template <int K>
struct SelectLaunch {
  static cudaError_t run(const TreeView& t, int sim, cudaStream_t stream) {
    select_kernel<K><<<grid_for(t.B), kWarpsPerBlock * kWarp, 0, stream>>>(t, sim);
    return cudaGetLastError();
  }
};

template <int K>
struct ExpandLaunch {
  static cudaError_t run(const TreeView& t, const ModelView& m, int sim, cudaStream_t stream) {
    expand_backup_kernel<K><<<grid_for(t.B), kWarpsPerBlock * kWarp, 0, stream>>>(t, m, sim);
    return cudaGetLastError();
  }
};

}  // namespace

cudaError_t launch_select(const TreeView& tree, int sim, cudaStream_t stream) {
  if (tree.B == 0) return cudaSuccess;
  return dispatch<SelectLaunch>(tree.A, tree, sim, stream);
}

cudaError_t launch_expand_backup(const TreeView& tree, const ModelView& model, int sim,
                                 cudaStream_t stream) {
  if (tree.B == 0) return cudaSuccess;
  return dispatch<ExpandLaunch>(tree.A, tree, model, sim, stream);
}

}  // namespace mtrl_cuda
