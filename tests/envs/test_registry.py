import pytest

from mtrl import ActionSpace, Modality, TaskSpec, get_suite, get_task, list_suites
from mtrl.envs.registry import resolve_tasks

ATARI8 = ["Pong", "MsPacman", "Seaquest", "Boxing", "Alien", "ChopperCommand", "Hero", "RoadRunner"]


def test_atari26_has_26_games_with_reference_scores_in_documented_order() -> None:
    suite = get_suite("atari26")
    assert len(suite) == 26
    assert [s.name for s in suite[:8]] == ATARI8
    for spec in suite:
        assert spec.random_score is not None and spec.human_score is not None
        assert spec.human_score > spec.random_score
        assert spec.action == ActionSpace("discrete", n=18)
        assert spec.max_episode_steps == 27_000  # 108,000 frames at frame skip 4
    assert get_task("atari/Pong").random_score == -20.7
    assert get_task("atari/Pong").human_score == 14.6


def test_atari8_is_the_first_eight_of_atari26() -> None:
    assert get_suite("atari8") == get_suite("atari26")[:8]


def test_dmc18_specs() -> None:
    suite = get_suite("dmc18")
    assert len(suite) == 18
    walker = get_task("dmc/walker-walk")
    assert walker.obs_shape == (24,) and walker.action.dim == 6
    assert walker.action_repeat == 4 and walker.max_episode_steps == 250
    pendulum = get_task("dmc/pendulum-swingup")
    assert pendulum.action_repeat == 8 and pendulum.max_episode_steps == 125
    assert all(s.max_score == 1000.0 and s.modality == Modality.VECTOR for s in suite)


def test_tiny_mixes_two_atari_two_dmc_one_text_one_classic() -> None:
    suites = [s.suite for s in get_suite("tiny")]
    assert sorted(suites) == ["atari", "atari", "classic", "dmc", "dmc", "text"]


def test_every_suite_resolves_and_ids_are_unique() -> None:
    for name in list_suites():
        ids = [s.id for s in get_suite(name)]
        assert len(ids) == len(set(ids)) > 0


def test_unknown_names_give_errors_listing_valid_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown suite 'atari99'.*atari26"):
        get_suite("atari99")
    with pytest.raises(ValueError, match=r"unknown task 'atari/Pongg'.*atari/Pong"):
        get_task("atari/Pongg")
    with pytest.raises(ValueError, match=r"unknown task 'foo/bar'.*suites"):
        get_task("foo/bar")


def test_resolve_tasks_mixes_suites_and_ids_without_duplicates() -> None:
    specs = resolve_tasks(["classic", "classic/CartPole", "atari/Qbert"])
    assert [s.id for s in specs][-1] == "atari/Qbert"
    assert len(specs) == len(get_suite("classic")) + 1


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="suite"):
        TaskSpec("nosuite", Modality.VECTOR, (3,), ActionSpace("discrete", n=2), 10)
    with pytest.raises(ValueError, match="continuous"):
        ActionSpace("continuous", n=3)
    with pytest.raises(ValueError, match="unknown action kind"):
        ActionSpace("banana", n=3)  # type: ignore[arg-type]


def test_normalized_scores() -> None:
    pong = get_task("atari/Pong")
    assert pong.normalized_score(pong.human_score) == pytest.approx(1.0)
    assert pong.normalized_score(pong.random_score) == pytest.approx(0.0)
    assert get_task("dmc/walker-walk").normalized_score(500.0) == pytest.approx(0.5)
