// C++ CPU backend of the batched search (mtrl/search). It mirrors mtrl/search/reference.py
// operation by operation: the same float32 tree updates, the same float64 selection maths in
// the same order, the same first-maximum argmax, so decisions match the torch reference.
//
// One object per search holds raw pointers into the preallocated tree tensors (owned by the
// Python Tree, kept alive here). Each simulation costs two calls from Python: select() walks all
// B trees to an unexpanded edge (threads across trees), the model runs once for the batch, and
// expand_and_backup() writes the new nodes and backs values up. No Python objects per tree.
#include <ATen/core/Tensor.h>
#include <torch/csrc/utils/pybind.h>

#include <ATen/Parallel.h>

#include "search_cpu_common.h"
#include "tree_pool.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <vector>

namespace mtrl {
// Gumbel MuZero's root summary for all trees (search_cpu_summary.cpp).
std::vector<at::Tensor> gumbel_summary(const std::vector<at::Tensor>& fields, double c_visit,
                                       double c_scale);
}  // namespace mtrl

namespace {

using mtrl::ChildSums, mtrl::data_of, mtrl::kNegInf, mtrl::normalize;
constexpr int64_t kTreesPerChunk = 16;  // parallel grain: a few microseconds of work per chunk

enum Algorithm : int64_t { kMuZero = 0, kGumbelMuZero = 1 };

struct Params {
  int64_t algorithm;
  double pb_c_init, pb_c_base, c_visit, c_scale;
};

// Per-thread buffers for the children of one node.
struct Scratch {
  explicit Scratch(int64_t num_actions)
      : visits(num_actions), listed(num_actions), q(num_actions), score(num_actions) {}
  std::vector<int32_t> visits;
  std::vector<int32_t> listed;  // actions passing a branch-free filter, ascending
  std::vector<float> q;  // Q of visited children
  std::vector<double> score;
};

// Threads for the per-tree loops: $MTRL_SEARCH_THREADS if set, else torch's intra-op count,
// read when the first search starts (the pool lives for the process).
inline int tree_threads() {
  if (const char* env = std::getenv("MTRL_SEARCH_THREADS")) {
    const int threads = std::atoi(env);
    if (threads > 0) return threads;
  }
  return at::get_num_threads();
}

class CpuSearch : private mtrl::TreeView {
 public:
  CpuSearch(const std::vector<at::Tensor>& fields, int64_t algorithm, double pb_c_init,
            double pb_c_base, double c_visit, double c_scale)
      : TreeView(fields),
        keep_alive_(fields),
        params_{algorithm, pb_c_init, pb_c_base, c_visit, c_scale} {
    TORCH_CHECK(fields.size() == 23, "expected 23 tree fields, got ", fields.size());
    TORCH_CHECK(algorithm == kMuZero || algorithm == kGumbelMuZero, "unknown algorithm id ",
                algorithm);
    using at::kLong;
    out_embedding_ = data_of<int64_t>(fields[20], kLong, "out_embedding");
    out_action_ = data_of<int64_t>(fields[21], kLong, "out_action");
    sel_parent_ = data_of<int64_t>(fields[22], kLong, "sel_parent");
    for (int i = 20; i < 23; ++i) TORCH_CHECK(fields[i].numel() == B_, "outputs must be [B]");
    root_max_visits_.assign(B_, 0);
    prior_total_.assign(B_ * N_, 0.0);
    for (int64_t b = 0; b < B_; ++b) {
      for (int64_t node = 0; node < N_; ++node) {
        const int64_t i = node_at(b, node);
        if (visits_[i] > 0) {
          prior_total_[i] = legal_total(child_prior_ + i * A_, interior_legal_ + b * A_);
        }
      }
      for (int64_t a = 0; a < A_; ++a) {
        const int32_t child = child_index_[b * N_ * A_ + a];
        if (child < 0) continue;
        root_max_visits_[b] = std::max(root_max_visits_[b], visits_[node_at(b, child)]);
      }
    }
  }

  void select(int64_t sim) {
    TORCH_CHECK(sim >= 0 && sim < S_, "simulation index ", sim, " out of range [0, ", S_, ")");
    pool_.parallel_for(B_, kTreesPerChunk, [&](int64_t begin, int64_t end) {
      Scratch scratch(A_);
      for (int64_t b = begin; b < end; ++b) select_tree(b, sim, scratch);
    });
  }

  void expand_and_backup(int64_t sim, const at::Tensor& logits_in, const at::Tensor& value_in,
                         const at::Tensor& reward_in, const at::Tensor& ids_in,
                         const c10::optional<at::Tensor>& terminal_in) {
    TORCH_CHECK(sim >= 0 && sim < S_, "simulation index ", sim, " out of range [0, ", S_, ")");
    const at::Tensor logits = logits_in.contiguous(), value = value_in.contiguous();
    const at::Tensor reward = reward_in.contiguous(), ids = ids_in.contiguous();
    TORCH_CHECK(logits.numel() == B_ * A_ && value.numel() == B_ && reward.numel() == B_ &&
                    ids.numel() == B_, "model output has wrong sizes");
    const float* logits_p = data_of<float>(logits, at::kFloat, "prior_logits");
    const float* value_p = data_of<float>(value, at::kFloat, "value");
    const float* reward_p = data_of<float>(reward, at::kFloat, "reward");
    const int64_t* ids_p = data_of<int64_t>(ids, at::kLong, "embedding_id");
    at::Tensor terminal;
    const bool* terminal_p = nullptr;
    if (terminal_in.has_value()) {
      terminal = terminal_in->contiguous();
      TORCH_CHECK(terminal.numel() == B_, "terminal must have B entries");
      terminal_p = data_of<bool>(terminal, at::kBool, "terminal");
    }
    pool_.parallel_for(B_, kTreesPerChunk, [&](int64_t begin, int64_t end) {
      Scratch scratch(A_);
      for (int64_t b = begin; b < end; ++b) {
        const bool ended = terminal_p != nullptr && terminal_p[b];
        expand_tree(b, sim, logits_p + b * A_, value_p[b], reward_p[b], ids_p[b], ended,
                    scratch);
        backup_tree(b, static_cast<int32_t>(sim + 1));
      }
    });
  }

 private:
  // pUCT (reference: mtrl/search/muzero.py) fused with the gather and the first-max argmax.
  int32_t puct_action(int64_t b, int32_t node, const bool* legal) const {
    const int32_t* children = child_index_ + node_at(b, node) * A_;
    const float* prior = child_prior_ + node_at(b, node) * A_;
    const double parent = visits_[node_at(b, node)];
    const double c = params_.pb_c_init + std::log((parent + params_.pb_c_base + 1.0) /
                                                  params_.pb_c_base);
    const double sqrt_parent = std::sqrt(parent);
    double best_score = kNegInf;
    int32_t best = 0;
    for (int32_t a = 0; a < A_; ++a) {
      double score = kNegInf;
      if (legal[a]) {
        const int32_t child = children[a];
        const int32_t n = child < 0 ? 0 : visits_[node_at(b, child)];
        const double value = n > 0 ? normalize(child_q(b, child), min_q_[b], max_q_[b]) : 0.0;
        score = value + c * static_cast<double>(prior[a]) * sqrt_parent /
                            (1.0 + static_cast<double>(n));
      }
      if (a == 0 || score > best_score) {
        best_score = score;
        best = a;
      }
    }
    return best;
  }

  // One pass over the children of `node`: visits (0 where unexpanded) and Q of the visited
  // ones into the scratch, and the sums Gumbel's v_mix needs (reference: gumbel.mixed_value).
  ChildSums gather_children(int64_t b, int32_t node, bool with_q, Scratch& s) const {
    const int32_t* children = child_index_ + node_at(b, node) * A_;
    const float* prior = child_prior_ + node_at(b, node) * A_;
    ChildSums sums;
    for (int64_t a = 0; a < A_; ++a) {
      const int32_t c = children[a];
      const int32_t n = c < 0 ? 0 : visits_[node_at(b, c)];
      s.visits[a] = n;
      sums.max_n = std::max(sums.max_n, n);
      sums.sum_n += n;
      if (with_q && n > 0) {
        s.q[a] = child_q(b, c);
        sums.sum_pq += static_cast<double>(prior[a]) * static_cast<double>(s.q[a]);
        sums.sum_p += prior[a];
      }
    }
    return sums;
  }

  double mixed_value(int64_t b, int32_t node, const ChildSums& sums) const {
    return mtrl::mixed_value(raw_value_[node_at(b, node)], sums);
  }

  // Nothing visited yet: pi' = prior / sum(prior) and no visit penalty, so the rule reduces to
  // the first legal maximum of the prior (dividing distinct float32 priors by one double ~1
  // keeps them distinct, so ties and order are the reference's).
  int32_t prior_argmax(const float* prior, const bool* legal) const {
    float best_prior = -1.0f;
    int32_t best = 0;
    for (int32_t a = 0; a < A_; ++a) {
      if (legal[a] && prior[a] > best_prior) {
        best_prior = prior[a];
        best = a;
      }
    }
    return best;
  }

  // Deterministic non-root selection (reference: gumbel.interior_scores):
  // argmax pi'(a) - N(a) / (1 + sum N), pi' proportional to prior * exp(sigma - sigma_mix).
  int32_t gumbel_interior_action(int64_t b, int32_t node, const bool* legal, Scratch& s) const {
    const float* prior = child_prior_ + node_at(b, node) * A_;
    // Until the tree holds two distinct Q values normalize() is 0 everywhere, so with a finite
    // scale every weight is exp(0) = 1 exactly and pi' is the prior over its legal total.
    if (!(max_q_[b] > min_q_[b]) && std::isfinite(params_.c_scale)) {
      return flat_interior_action(b, node, prior, legal);
    }
    const ChildSums sums = gather_children(b, node, true, s);
    if (sums.sum_n == 0.0) return prior_argmax(prior, legal);
    const double scale = (params_.c_visit + sums.max_n) * params_.c_scale;
    const double sigma_mix = scale * normalize(mixed_value(b, node, sums), min_q_[b], max_q_[b]);
    const double sum_n = sums.sum_n;
    double total = 0.0;
    for (int64_t a = 0; a < A_; ++a) {
      double weight = 1.0;
      if (s.visits[a] > 0) {
        weight = std::exp(scale * normalize(s.q[a], min_q_[b], max_q_[b]) - sigma_mix);
      }
      s.score[a] = legal[a] ? static_cast<double>(prior[a]) * weight : 0.0;
      total += s.score[a];
    }
    // Reciprocals once per node (the reference multiplies by the same ones).
    const double inv_total = 1.0 / total, inv_visits = 1.0 / (1.0 + sum_n);
    double best_score = kNegInf;
    int32_t best = 0;
    for (int32_t a = 0; a < A_; ++a) {
      if (!legal[a]) continue;
      const double score = s.score[a] * inv_total - s.visits[a] * inv_visits;
      if (score > best_score) {  // strict: the first maximum wins, as torch.argmax
        best_score = score;
        best = a;
      }
    }
    return best;
  }

  // The interior rule on a flat tree in one pass: the legal prior total was summed at
  // expansion in the reference's order, and a node's children hold visits[node] - 1 visits
  // (each simulation through a node ends in exactly one of its subtrees).
  int32_t flat_interior_action(int64_t b, int32_t node, const float* prior,
                               const bool* legal) const {
    const int64_t i = node_at(b, node);
    if (visits_[i] == 1) return prior_argmax(prior, legal);
    const int32_t* children = child_index_ + i * A_;
    const double inv_total = 1.0 / prior_total_[i];
    const double inv_visits = 1.0 / static_cast<double>(visits_[i]);
    double best_score = kNegInf;
    int32_t best = 0;
    for (int32_t a = 0; a < A_; ++a) {
      if (!legal[a]) continue;
      const int32_t n = children[a] < 0 ? 0 : visits_[node_at(b, children[a])];
      const double score = static_cast<double>(prior[a]) * inv_total - n * inv_visits;
      if (score > best_score) {
        best_score = score;
        best = a;
      }
    }
    return best;
  }

  // Root: g + logits + sigma(completed Q) over the legal actions whose visit count is this
  // simulation's considered visit (reference: gumbel.root_scores). Only those are scored.
  int32_t gumbel_root_action(int64_t b, int64_t sim, Scratch& s) const {
    const int32_t* children = child_index_ + b * N_ * A_;
    const int32_t considered = considered_[b * S_ + sim];
    // max_b N(b) is kept up to date by backup_tree, so later phases skip a gather pass.
    const double scale = (params_.c_visit + root_max_visits_[b]) * params_.c_scale;
    // Which actions are eligible changes every simulation, so a branch on it mispredicts
    // often (measured: a quarter of the rule's time): list them without one (ascending, so
    // the first maximum stays the reference's), then score only those.
    const bool* legal = root_legal_ + b * A_;
    int32_t eligible = 0;
    for (int32_t a = 0; a < A_; ++a) {
      const int32_t visits = visits_[node_at(b, std::max(children[a], 0))];  // node 0: a stand-in
      s.listed[eligible] = a;
      eligible += legal[a] & ((children[a] < 0 ? 0 : visits) == considered);
    }
    if (considered == 0) return unvisited_root_action(b, eligible, scale, s);
    const float* logits = root_logits_ + b * A_;
    const float* gumbel = gumbel_ + b * A_;
    double best_score = kNegInf;
    int32_t best = 0;
    for (int32_t k = 0; k < eligible; ++k) {
      const int32_t a = s.listed[k];
      const double sigma = scale * normalize(child_q(b, children[a]), min_q_[b], max_q_[b]);
      const double score =
          static_cast<double>(gumbel[a]) + static_cast<double>(logits[a]) + sigma;
      if (score > best_score) {  // strict: the first maximum wins, as torch.argmax
        best_score = score;
        best = a;
      }
    }
    return best;
  }

  // The root while its unvisited actions are eligible: all share sigma(v_mix), a shift of at
  // most |scale| (normalize clamps to [0, 1]). Adding one number keeps the scores' order (IEEE
  // addition is monotone) and can only tie scores closer than its rounding error, so v_mix
  // (a pass over the visited children) is needed only to settle such near-ties.
  int32_t unvisited_root_action(int64_t b, int32_t eligible, double scale, Scratch& s) const {
    const float* logits = root_logits_ + b * A_;
    const float* gumbel = gumbel_ + b * A_;
    double top = kNegInf, runner_up = kNegInf;
    int32_t best = 0;
    for (int32_t k = 0; k < eligible; ++k) {
      const int32_t a = s.listed[k];
      const double score = static_cast<double>(gumbel[a]) + static_cast<double>(logits[a]);
      if (score > top) {
        runner_up = top;
        top = score;
        best = a;
      } else if (score < top) {  // an exact tie with the top stays behind it either way
        runner_up = std::max(runner_up, score);
      }
    }
    if (runner_up == kNegInf) return best;  // no other candidate (or exact ties only)
    // Each rounding moves a score by at most 2^-53 of its magnitude: a gap above 2^-50 of the
    // largest magnitude cannot close (false for a NaN or infinite scale: the general path).
    const double magnitude = std::max(std::abs(top), std::abs(runner_up)) + std::abs(scale);
    if (top - runner_up > magnitude * 0x1p-50) return best;
    const double v_mix = mixed_value(b, 0, gather_children(b, 0, true, s));
    const double sigma_mix = scale * normalize(v_mix, min_q_[b], max_q_[b]);
    double best_score = kNegInf;
    best = 0;
    for (int32_t k = 0; k < eligible; ++k) {
      const int32_t a = s.listed[k];
      const double score =
          static_cast<double>(gumbel[a]) + static_cast<double>(logits[a]) + sigma_mix;
      if (score > best_score) {
        best_score = score;
        best = a;
      }
    }
    return best;
  }

  int32_t choose_action(int64_t b, int32_t node, int64_t sim, Scratch& s) const {
    const bool* legal = (node == 0 ? root_legal_ : interior_legal_) + b * A_;
    if (params_.algorithm == kMuZero) return puct_action(b, node, legal);
    if (node == 0) return gumbel_root_action(b, sim, s);
    return gumbel_interior_action(b, node, legal, s);
  }

  void select_tree(int64_t b, int64_t sim, Scratch& s) {
    int32_t node = 0;
    while (true) {
      const int32_t a = choose_action(b, node, sim, s);
      const int32_t child = child_index_[node_at(b, node) * A_ + a];
      if (child < 0) {
        sel_parent_[b] = node;
        out_action_[b] = a;
        out_embedding_[b] = embedding_id_[node_at(b, node)];
        return;
      }
      node = child;
    }
  }

  void expand_tree(int64_t b, int64_t sim, const float* logits, float value, float reward,
                   int64_t id, bool ended, Scratch& s) {
    const int32_t parent = static_cast<int32_t>(sel_parent_[b]);
    const int32_t a = static_cast<int32_t>(out_action_[b]);
    const int64_t p = node_at(b, parent), n = node_at(b, sim + 1);
    const bool parent_terminal = terminal_[p];
    const bool terminal = ended || parent_terminal;
    terminal_[n] = terminal;
    raw_value_[n] = terminal ? 0.0f : value;
    reward_[n] = parent_terminal ? 0.0f : reward;
    parent_[n] = parent;
    action_[n] = a;
    depth_[n] = depth_[p] + 1;
    embedding_id_[n] = id;
    child_index_[p * A_ + a] = static_cast<int32_t>(sim + 1);
    leaf_depths_[sim * B_ + b] = depth_[n];
    write_priors(logits, interior_legal_ + b * A_, child_prior_ + n * A_, s.score);
    prior_total_[n] = legal_total(child_prior_ + n * A_, interior_legal_ + b * A_);
  }

  // Sum of the legal priors in action order, as the reference's pi' normaliser adds them.
  double legal_total(const float* prior, const bool* legal) const {
    double total = 0.0;
    for (int64_t a = 0; a < A_; ++a) total += legal[a] ? static_cast<double>(prior[a]) : 0.0;
    return total;
  }

  // Softmax over legal actions in float64, stored as float32 (as tree.masked_softmax).
  void write_priors(const float* logits, const bool* legal, float* prior,
                    std::vector<double>& exps) const {
    double top = kNegInf;
    for (int64_t a = 0; a < A_; ++a) {
      if (legal[a]) top = std::max(top, static_cast<double>(logits[a]));
    }
    double total = 0.0;
    for (int64_t a = 0; a < A_; ++a) {
      exps[a] = legal[a] ? std::exp(static_cast<double>(logits[a]) - top) : 0.0;
      total += exps[a];
    }
    for (int64_t a = 0; a < A_; ++a) prior[a] = static_cast<float>(exps[a] / total);
  }

  void backup_tree(int64_t b, int32_t leaf) {
    const float gamma = discount_[b];
    float ret = raw_value_[node_at(b, leaf)];
    for (int32_t node = leaf; node >= 0; node = parent_[node_at(b, node)]) {
      const int64_t i = node_at(b, node);
      visits_[i] += 1;
      value_sum_[i] += ret;
      const float r = reward_[i];
      if (node != 0) {
        const float q = r + gamma * (value_sum_[i] / static_cast<float>(visits_[i]));
        min_q_[b] = std::min(min_q_[b], q);
        max_q_[b] = std::max(max_q_[b], q);
        if (parent_[i] == 0) root_max_visits_[b] = std::max(root_max_visits_[b], visits_[i]);
      }
      ret = r + gamma * ret;
    }
  }

  std::vector<at::Tensor> keep_alive_;
  std::vector<int32_t> root_max_visits_;  // [B] max visit count over each root's children
  std::vector<double> prior_total_;  // [B * N] each expanded node's legal prior total
  mtrl::TreePool& pool_ = mtrl::TreePool::instance(tree_threads());
  Params params_;
  int64_t *out_embedding_, *out_action_, *sel_parent_;  // [B] selected edges, for the model
};

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "mtrl batched MCTS: C++ CPU tree kernels";
  py::class_<CpuSearch>(m, "CpuSearch")
      .def(py::init<const std::vector<at::Tensor>&, int64_t, double, double, double, double>())
      .def("select", &CpuSearch::select, py::call_guard<py::gil_scoped_release>())
      .def("expand_and_backup", &CpuSearch::expand_and_backup,
           py::call_guard<py::gil_scoped_release>());
  m.def("gumbel_summary", &mtrl::gumbel_summary,
        "Gumbel root summary of all trees: (action, action_weights, visit_counts, root_value)");
}
