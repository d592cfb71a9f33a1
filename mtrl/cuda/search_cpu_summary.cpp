// Gumbel MuZero's root summary for all B trees in one call: the completed-Q improved policy,
// the root visit counts, the root value and the action to play (reference: the gumbel_muzero
// branch of mtrl/search/summary.py, same operations in the same order). In torch it is ~25
// small ops, which at B = 256 cost about a tenth of a whole 50-simulation search; here it is
// a few passes over each root's children.
#include <ATen/ATen.h>

#include "search_cpu_common.h"

#include <cmath>
#include <vector>

namespace mtrl {
namespace {

class RootSummary {
 public:
  RootSummary(const TreeView& t, double c_visit, double c_scale)
      : t_(t), c_visit_(c_visit), c_scale_(c_scale), q_(t.A_), sigma_(t.A_), exps_(t.A_) {
    const auto options = at::TensorOptions().device(at::kCPU);
    action = at::empty({t.B_}, options.dtype(at::kLong));
    weights = at::empty({t.B_, t.A_}, options.dtype(at::kFloat));
    visit_counts = at::empty({t.B_, t.A_}, options.dtype(at::kInt));
    root_value = at::empty({t.B_}, options.dtype(at::kFloat));
    action_p_ = action.data_ptr<int64_t>();
    weights_p_ = weights.data_ptr<float>();
    counts_p_ = visit_counts.data_ptr<int32_t>();
    root_value_p_ = root_value.data_ptr<float>();
  }

  void summarize(int64_t b) {
    int32_t* counts = counts_p_ + b * t_.A_;
    completed_sigma(b, gather_root(b, counts), counts);
    improved_policy(b, weights_p_ + b * t_.A_);
    action_p_[b] = gumbel_action(b, counts);
    const int64_t root = t_.node_at(b, 0);
    root_value_p_[b] = t_.value_sum_[root] / static_cast<float>(t_.visits_[root]);
  }

  at::Tensor action, weights, visit_counts, root_value;

 private:
  // The root's visit counts (0 where unexpanded) into counts and each visited child's Q into
  // q_ (stats.child_stats), with the sums for v_mix.
  ChildSums gather_root(int64_t b, int32_t* counts) {
    const int32_t* children = t_.child_index_ + t_.node_at(b, 0) * t_.A_;
    const float* prior = t_.child_prior_ + t_.node_at(b, 0) * t_.A_;
    ChildSums sums;
    for (int64_t a = 0; a < t_.A_; ++a) {
      const int32_t n = children[a] < 0 ? 0 : t_.visits_[t_.node_at(b, children[a])];
      counts[a] = n;
      sums.max_n = std::max(sums.max_n, n);
      sums.sum_n += n;
      if (n > 0) {
        q_[a] = t_.child_q(b, children[a]);
        sums.sum_pq += static_cast<double>(prior[a]) * q_[a];
        sums.sum_p += prior[a];
      }
    }
    return sums;
  }

  // sigma(completed Q) per child into sigma_ (reference: gumbel.completed_sigma).
  void completed_sigma(int64_t b, const ChildSums& sums, const int32_t* counts) {
    const float lo = t_.min_q_[b], hi = t_.max_q_[b];
    const double scale = (c_visit_ + sums.max_n) * c_scale_;
    const double raw = t_.raw_value_[t_.node_at(b, 0)];
    const double sigma_mix = scale * normalize(mixed_value(raw, sums), lo, hi);
    for (int64_t a = 0; a < t_.A_; ++a) {
      sigma_[a] = counts[a] > 0 ? scale * normalize(q_[a], lo, hi) : sigma_mix;
    }
  }

  // softmax(logits + sigma) over the legal actions (gumbel.improved_policy, written out like
  // numerics.masked_softmax: max, exp, ordered sum, divide).
  void improved_policy(int64_t b, float* weights) {
    const float* logits = t_.root_logits_ + b * t_.A_;
    const bool* legal = t_.root_legal_ + b * t_.A_;
    double top = kNegInf;
    for (int64_t a = 0; a < t_.A_; ++a) {
      if (legal[a]) top = std::max(top, static_cast<double>(logits[a]) + sigma_[a]);
    }
    double total = 0.0;
    for (int64_t a = 0; a < t_.A_; ++a) {
      exps_[a] = legal[a] ? std::exp(static_cast<double>(logits[a]) + sigma_[a] - top) : 0.0;
      total += exps_[a];
    }
    for (int64_t a = 0; a < t_.A_; ++a) weights[a] = static_cast<float>(exps_[a] / total);
  }

  // First maximum of g + logits + sigma among the most visited legal actions (reference:
  // summary._gumbel_action): the survivors of sequential halving.
  int64_t gumbel_action(int64_t b, const int32_t* counts) const {
    const float* logits = t_.root_logits_ + b * t_.A_;
    const float* gumbel = t_.gumbel_ + b * t_.A_;
    const bool* legal = t_.root_legal_ + b * t_.A_;
    int32_t most_visited = -1;
    for (int64_t a = 0; a < t_.A_; ++a) {
      if (legal[a]) most_visited = std::max(most_visited, counts[a]);
    }
    double best_score = kNegInf;
    int64_t best = 0;
    for (int64_t a = 0; a < t_.A_; ++a) {
      if (!legal[a] || counts[a] != most_visited) continue;
      const double score =
          static_cast<double>(gumbel[a]) + static_cast<double>(logits[a]) + sigma_[a];
      if (score > best_score) {  // strict: the first maximum wins, as torch.argmax
        best_score = score;
        best = a;
      }
    }
    return best;
  }

  const TreeView& t_;
  double c_visit_, c_scale_;
  std::vector<double> q_, sigma_, exps_;  // per-child buffers, reused root after root
  int64_t* action_p_;
  float *weights_p_, *root_value_p_;
  int32_t* counts_p_;
};

}  // namespace

// fields: the tree tensors in cpu_backend.tree_fields order. Returns (action [B] int64,
// action_weights [B, A] float32, visit_counts [B, A] int32, root_value [B] float32).
std::vector<at::Tensor> gumbel_summary(const std::vector<at::Tensor>& fields, double c_visit,
                                       double c_scale) {
  TORCH_CHECK(fields.size() == 20, "expected the 20 tree fields, got ", fields.size());
  const TreeView tree(fields);
  RootSummary summary(tree, c_visit, c_scale);
  for (int64_t b = 0; b < tree.B_; ++b) summary.summarize(b);
  return {summary.action, summary.weights, summary.visit_counts, summary.root_value};
}

}  // namespace mtrl
