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


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.lr=fast", "train.lr='fast': expected float"),
        ("train.epochs=2.5", "train.epochs=2.5: expected int"),
        ("train.amsgrad=3", "train.amsgrad=3: expected bool"),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_run_config(["synthetic"], [override])


# --------------------------------------------------------------------------------------------
# One mechanism, one home for each default and preset
# --------------------------------------------------------------------------------------------
def _leaves(values, prefix=""):
    for key, value in values.items():
        if isinstance(value, dict) and key != "text_encoder_kwargs":
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def test_base_yaml_restates_no_dataclass_default():
    from cra.config import PACKAGED_CONFIGS, RunConfig, defaults, read_yaml
    from cra.model import CRAConfig

    base, default = dict(_leaves(read_yaml(PACKAGED_CONFIGS / "base.yaml"))), dict(_leaves(defaults(RunConfig)))
    restated = sorted(k for k, v in base.items() if default[k] == v)
    assert not restated, f"base.yaml restates dataclass defaults {restated}: keep them in the dataclass only"
    config, _ = load_run_config([])
    assert config == RunConfig(model=CRAConfig(text_encoder_kwargs={"pretrained": "roberta-base", "max_length": 38}))


def test_the_released_preset_has_one_home():
    from cra.config import PACKAGED_CONFIGS, read_yaml
    from cra.model import RELEASED_CODE, CRAConfig

    preset = read_yaml(PACKAGED_CONFIGS / "variants" / "released_code.yaml")
    assert set(preset) == {"data", "model", "train"} and preset["model"] == RELEASED_CODE
    defaults = load_run_config([])[0]
    for section in ("data", "train"):  # each data / train entry is a difference too
        assert {k for k, v in preset[section].items() if getattr(getattr(defaults, section), k) == v} == set()
    paper, released = CRAConfig(), CRAConfig.released_code()
    assert {k for k in RELEASED_CODE if getattr(paper, k) == RELEASED_CODE[k]} == set()  # each entry is a difference
    assert {f for f in paper.to_dict() if getattr(paper, f) != getattr(released, f)} == set(RELEASED_CODE)
    layered, _ = load_run_config(["variants/released_code"])
    assert {k: getattr(layered.model, k) for k in RELEASED_CODE} == RELEASED_CODE


def test_select_metric_names_come_from_cra_metrics():
    from cra.metrics import METRIC_KEYS

    for name in METRIC_KEYS:
        assert load_run_config([], [f"train.select_metric={name}"])[0].train.select_metric == name
    with pytest.raises(ConfigError, match="IoU@0.7"):
        load_run_config([], ["train.select_metric=IoU@0.7"])


@pytest.mark.parametrize("item", ["train.epochs=[1,", "model.window_sizes={a: [", "train.lr=: :"])
def test_malformed_yaml_in_set_is_a_clear_error(item, capsys):
    from cra.cli import main

    with pytest.raises(ConfigError, match=r"--set .*: the value .* is not valid YAML"):
        load_run_config([], [item])
    assert main(["train", "--config", "synthetic", "--set", item, "--run", "/nonexistent/run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("train: error: --set") and "Traceback" not in err


def test_a_type_error_in_a_file_names_the_file_and_the_key(tmp_path):
    layer = tmp_path / "mine.yaml"
    layer.write_text("train:\n  epochs: two\n")
    with pytest.raises(ConfigError, match=r"mine\.yaml: train\.epochs='two': expected int"):
        load_run_config(["synthetic", str(layer)])


def test_the_study_config_goes_through_the_same_mechanism(tmp_path):
    from cra import study
    from cra.runmode import MODES

    assert study.modes() == sorted(MODES)
    fast = study.study_config("fast", ["world.train_videos=50", "world.fps=25", "seeds=[4]", "train.epochs=2"])
    assert fast.world == {
        "train_videos": 50,
        "val_videos": 125,
        "test_id_videos": 300,
        "test_ood_videos": 300,
        "question_form": "subject",
        "fps": 25.0,
    }  # --set merges into the mode's world; values typed like config values
    assert fast.seeds == [4] and fast.run == ["train.epochs=2"] and fast.world_config().fps == 25.0
    assert study.study_config("full").world == {"question_form": "subject", "train_videos": 2000}  # replaced
    for item, message in [
        ("world.fps=fast", r"--set world\.fps=fast: world\.fps='fast': expected float"),
        ("world.nope=1", r"--set world\.nope=1: unknown key 'world\.nope'"),
        ("threads=two", r"--set threads=two: threads='two': expected int"),
        ("seeds=[0,", r"--set 'seeds=\[0,': the value '\[0,' is not valid YAML"),
        ("mode=full", "chosen with --mode"),
        ("train.nope=1", r"--set train\.nope=1: unknown key 'train\.nope'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            study.study_config("fast", [item])
    with pytest.raises(ConfigError, match="--mode 'huge'"):
        study.study_config("huge")
