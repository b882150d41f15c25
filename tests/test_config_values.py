"""Config values: YAML numbers as users write them, and scalar types checked before training."""

import pytest

from cra.config import ConfigError, load_run_config, parse_yaml


@pytest.mark.parametrize("text,value", [("3e-3", 0.003), ("1.0e-5", 1e-5), ("-2E-3", -0.002), ("7", 7), (".5", 0.5)])
def test_exponents_without_a_dot_are_floats(text, value):
    parsed = parse_yaml(text)
    assert parsed == value and type(parsed) is type(value)


def test_set_lr_with_an_exponent_reaches_the_optimiser_as_a_float():
    config, _ = load_run_config(["synthetic"], ["train.lr=3e-3", "train.grad_clip=null", "train.epochs=2"])
    assert config.train.lr == 0.003 and config.train.grad_clip is None and config.train.epochs == 2


@pytest.mark.parametrize("override,message", [("train.lr=fast", "train.lr='fast': expected float"),
                                              ("train.epochs=2.5", "train.epochs=2.5: expected int"),
                                              ("train.amsgrad=3", "train.amsgrad=3: expected bool")])
def test_a_value_of_the_wrong_type_is_an_error_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_run_config(["synthetic"], [override])
