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
        ({"atari.colour": "1"}, r"unknown setting 'atari.colour'; valid here: size"),
        ({"mujoco.size": "1"}, r"unknown setting 'mujoco.size'; valid here: atari, dmc, text"),
        ({"atari": "1"}, r"is a group"),
        ({"atari.size": "big"}, r"bad setting atari.size='big': expected a int"),
        ({"atari.grayscale": "maybe"}, r"expected a bool"),
        ({"atari.size": "2"}, r"bad setting atari.size=2: expected an integer >= 8"),
    ],
)
def test_bad_settings_name_the_bad_value(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EnvSettings().with_overrides(overrides)


def test_sticky_probability_must_be_a_probability() -> None:
    with pytest.raises(ValueError, match="sticky_action_prob"):
        AtariSettings(sticky_action_prob=1.5)
