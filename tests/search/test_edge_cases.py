"""Edge cases of the search on every backend, and clear errors on bad input."""

from __future__ import annotations

import pytest
import torch
from search_fakes import HashedTableModel, search

from mtrl.search import ModelOutput, RootInput, SearchConfig
from mtrl.search import search as mtrl_search

ALGORITHMS = ["muzero", "gumbel_muzero"]


def roots(
    model: HashedTableModel, legal: torch.Tensor | None = None, **kwargs: object
) -> RootInput:
    return RootInput(
        prior_logits=model.root_logits(),
        value=torch.zeros(model.batch),
        embedding_id=torch.arange(model.batch),
        legal_mask=legal,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_all_but_one_action_masked(backend: str, algorithm: str) -> None:
    model = HashedTableModel(batch=2, num_actions=18, seed=1)
    legal = torch.zeros(2, 18, dtype=torch.bool)
    legal[0, 17] = True
    legal[1, 3] = True
    interior = torch.ones(2, 18, dtype=torch.bool)
    root = roots(model, legal, interior_mask=interior)
    out = search(
        root, model, SearchConfig(algorithm=algorithm, num_simulations=12), backend=backend
    )
    assert out.visit_counts[0, 17] == 12 and out.visit_counts[1, 3] == 12
    assert out.action.tolist() == [17, 3]
    # Below the root the whole action space is open (interior_mask), so the trees branch.
    assert int(out.tree.depth.amax()) < 12


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_mixed_action_counts_in_one_batch(backend: str, algorithm: str) -> None:
    counts = [1, 4, 18, 6]
    legal = torch.arange(18)[None, :] < torch.tensor(counts)[:, None]
    model = HashedTableModel(batch=4, num_actions=18, seed=2)
    out = search(
        roots(model, legal),
        model,
        SearchConfig(algorithm=algorithm, num_simulations=30),
        backend=backend,
    )
    assert out.visit_counts.sum(dim=1).tolist() == [30] * 4
    for b, count in enumerate(counts):
        assert int(out.visit_counts[b, count:].sum()) == 0
        # No node anywhere in the tree was reached through an action of another task.
        assert int(out.tree.action[b, 1:].amax()) < count
        assert float(out.action_weights[b, count:].sum()) == 0.0
        assert out.action[b] < count


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_huge_logits_stay_finite(backend: str, algorithm: str) -> None:
    model = HashedTableModel(batch=3, num_actions=5, seed=3, logit_scale=1e30)
    root = roots(model)
    out = search(
        root, model, SearchConfig(algorithm=algorithm, num_simulations=16), backend=backend
    )
    tree = out.tree
    assert torch.isfinite(tree.child_prior).all()
    assert torch.isfinite(out.action_weights).all() and torch.isfinite(out.root_value).all()
    assert torch.allclose(out.action_weights.sum(dim=1), torch.ones(3))
    # Priors are one-hot on each expanded node's largest logit.
    assert torch.equal(tree.child_prior[:, 0].argmax(dim=1), root.prior_logits.argmax(dim=1))
    assert set(tree.child_prior.unique().tolist()) <= {0.0, 1.0}
    assert out.visit_counts.sum(dim=1).tolist() == [16] * 3


def test_muzero_zero_simulations(backend: str) -> None:
    model = HashedTableModel(batch=2, num_actions=4, seed=4)
    root = roots(model)
    out = search(root, model, SearchConfig(num_simulations=0), backend=backend)
    assert out.visit_counts.sum() == 0
    assert torch.allclose(out.action_weights, torch.softmax(root.prior_logits, dim=1))
    assert out.root_value.tolist() == [0.0, 0.0]


def test_terminal_transitions_zero_everything_below(backend: str) -> None:
    model = HashedTableModel(batch=4, num_actions=3, seed=5, terminal_rate=0.4)
    out = search(roots(model), model, SearchConfig(num_simulations=40), backend=backend)
    tree = out.tree
    assert tree.terminal.any(), "the fake model should end some episodes"
    below = tree.terminal.gather(1, tree.parent.clamp(min=0).long()) & (tree.parent >= 0)
    assert torch.equal(tree.terminal | below, tree.terminal)  # terminal is inherited
    assert (tree.raw_value[tree.terminal] == 0).all()
    assert (tree.reward[below] == 0).all()
    assert (tree.value_sum[tree.terminal] == 0).all()  # nothing flows back into an ended episode


def test_dirichlet_noise_changes_root_priors_only(backend: str) -> None:
    model = HashedTableModel(batch=3, num_actions=6, seed=6)
    legal = torch.ones(3, 6, dtype=torch.bool)
    legal[:, 5] = False
    config = SearchConfig(num_simulations=5, dirichlet_fraction=0.25, dirichlet_alpha=0.3)
    noisy = search(roots(model, legal), model, config, backend=backend, seed=11).tree
    clean_prior = torch.softmax(model.root_logits()[:, :5], dim=1)
    assert not torch.allclose(noisy.child_prior[:, 0, :5], clean_prior)
    assert torch.allclose(noisy.child_prior[:, 0].sum(dim=1), torch.ones(3))
    assert (noisy.child_prior[:, 0, 5] == 0).all()
    assert (noisy.child_prior[:, 0, :5] >= 0.75 * clean_prior - 1e-6).all()


def test_bad_input_names_the_bad_value() -> None:
    model = HashedTableModel(batch=2, num_actions=3)
    good = roots(model)
    with pytest.raises(ValueError, match="'alphazero'"):
        SearchConfig(algorithm="alphazero")
    with pytest.raises(ValueError, match="'gpu'"):
        SearchConfig(backend="gpu")
    with pytest.raises(ValueError, match="num_simulations"):
        SearchConfig(num_simulations=-1)
    with pytest.raises(ValueError, match="'cuda' needs the roots on a CUDA device"):
        mtrl_search(good, model, SearchConfig(num_simulations=1), backend="cuda")
    with pytest.raises(ValueError, match=r"\[B, A\]"):
        search(RootInput(torch.zeros(3), torch.zeros(3), torch.arange(3)), model, SearchConfig())
    with pytest.raises(ValueError, match="root value"):
        search(RootInput(torch.zeros(2, 3), torch.zeros(5), torch.arange(2)), model, SearchConfig())
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        legal = torch.tensor([[True, False, False], [False, False, False]])
        search(roots(model, legal), model, SearchConfig())


def test_bad_model_output_is_reported(backend: str) -> None:
    model = HashedTableModel(batch=2, num_actions=3)

    def wrong_width(parent: torch.Tensor, action: torch.Tensor) -> ModelOutput:
        out = model(parent, action)
        return ModelOutput(out.prior_logits[:, :2], out.value, out.reward, out.embedding_id)

    with pytest.raises(ValueError, match=r"prior_logits must be torch\.float32 of shape"):
        search(roots(model), wrong_width, SearchConfig(num_simulations=2), backend=backend)
    with pytest.raises(TypeError, match="ModelOutput or a tuple"):
        search(roots(model), lambda p, a: [1, 2], SearchConfig(num_simulations=2), backend=backend)
