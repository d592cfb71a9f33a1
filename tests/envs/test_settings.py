import pytest

from mtrl.envs.settings import AtariSettings, EnvSettings


def test_overrides_coerce_types_and_apply() -> None:
    settings = EnvSettings().with_overrides(
        {"atari.size": "84", "atari.grayscale": "true", "atari.frame_stack": 4}
    )
    assert settings.atari.obs_shape == (4, 84, 84)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"atari.colour": "1"}, r"unknown config key 'atari.colour'; valid here: size"),
        ({"mujoco.size": "1"}, r"unknown config key 'mujoco.size'; valid here: atari, dmc, text"),
        ({"atari": "1"}, r"is a group"),
        ({"atari.size": "big"}, r"bad value atari.size='big': input should be a valid integer"),
        ({"atari.grayscale": "maybe"}, r"bad value atari.grayscale='maybe': .*valid boolean"),
        ({"atari.size": "2"}, r"bad setting atari.size=2: expected an integer >= 8"),
    ],
)
def test_bad_settings_name_the_bad_value(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvSettings().with_overrides(overrides)


def test_sticky_probability_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="sticky_action_prob"):
        AtariSettings(sticky_action_prob=1.5)


def test_evaluation_settings_use_the_evaluation_protocol() -> None:
    # Training without no-op starts, evaluation with up to 30 (the default), everything else kept.
    train = EnvSettings().with_overrides({"atari.size": 84, "dmc.action_repeat": 2})
    evaluation = train.for_evaluation()
    assert train.atari.noop_max == 0 and evaluation.atari.noop_max == 30
    assert evaluation.atari.size == 84 and evaluation.dmc == train.dmc
    assert evaluation.for_evaluation() == evaluation  # every path may derive it again
    custom = train.with_overrides({"atari.noop_max": 5, "atari.eval_noop_max": "0"})
    assert custom.for_evaluation().atari.noop_max == 0
    with pytest.raises(ValueError, match=r"^bad setting atari.eval_noop_max=-1: expected an"):
        train.with_overrides({"atari.eval_noop_max": -1})
