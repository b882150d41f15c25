"""The one configuration mechanism: dataclass schemas, YAML layers, ``--set a.b=c`` overrides.

Every setting of the package is a dataclass tree (a *schema*) built from layers, each a YAML mapping
applied on top of the ones before. :func:`load_layers` does it for any schema; the schemas are

* :class:`RunConfig` (``python -m cra train``): sections ``data``, ``model`` =
  :class:`cra.model.config.CRAConfig`, ``train``, ``eval``; :func:`load_run_config`;
* :class:`cra.study.plan.StudyConfig` (``python -m cra ablation``), whose ``world`` holds
  overrides of :class:`cra.synthetic.WorldConfig` (:func:`overrides_of`);
* :class:`cra.synthetic.WorldConfig` (``make-synthetic``) and :class:`cra.confounders.BuildConfig`
  (``build-confounders``).

Layers of a run config:

0. the dataclass defaults (:func:`defaults`);
1. ``cra/configs/base.yaml`` (always first);
2. each ``--config`` given, in order: a YAML path or a packaged name such as ``nextgqa``,
   ``synthetic`` or ``ablations/no_gsg`` (``cra/configs/<name>.yaml``);
3. each ``--set a.b=c`` (``c`` is parsed as YAML: ``--set train.epochs=2``, ``--set model.window_sizes=[1,3]``).

Nested mappings merge key by key; any other value replaces the one below. Every layer is checked on
its own, so an unknown key or a value of the wrong type is reported with the file (or the ``--set``)
it came from. Fields typed ``dict`` (such as ``model.text_encoder_kwargs``) are free-form: their keys
go to the code they name. Defaults have one home, the dataclass fields; a YAML layer holds only
what differs from them (``base.yaml``: the RoBERTa weights; ``tests/test_config_values.py`` checks it).
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from cra.metrics import METRIC_KEYS
from cra.model.config import CRAConfig
from cra.readouts import ALL_READOUTS, READOUTS

__all__ = [
    "ConfigError",
    "RunConfig",
    "DataConfig",
    "TrainConfig",
    "EvalConfig",
    "PACKAGED_CONFIGS",
    "parse_yaml",
    "config_path",
    "packaged_names",
    "run_layer_names",
    "read_yaml",
    "apply_overrides",
    "overrides_of",
    "check_keys",
    "check_values",
    "check_scalar",
    "merge",
    "defaults",
    "from_dict",
    "to_dict",
    "load_layers",
    "load_run_config",
]

PACKAGED_CONFIGS = Path(__file__).resolve().parent / "configs"


class _Loader(yaml.SafeLoader):
    """YAML 1.1 reads ``1e-5`` (no dot) as a string; this loader reads it as the float it means."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$|^[-+]?\.(?:inf|Inf|INF)$|^\.(?:nan|NaN|NAN)$"),
    list("-+0123456789."),
)
_Loader.yaml_implicit_resolvers = {  # ints stay ints: keep the int resolver ahead of ours
    key: sorted(resolvers, key=lambda r: r[0] != "tag:yaml.org,2002:int")
    for key, resolvers in _Loader.yaml_implicit_resolvers.items()
}


def parse_yaml(text: str):
    """YAML text with numbers such as ``3e-3`` read as floats."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)


class ConfigError(ValueError):
    """A configuration problem; the message names the file or ``--set`` and the key."""


# --------------------------------------------------------------------------------------------
# The run configuration
# --------------------------------------------------------------------------------------------
@dataclass
class DataConfig:
    """Where the official-layout files are. Relative paths are taken under ``root``."""

    root: str | None = None  # null: $CRA_DATA_DIR (cra.paths.data_dir())
    annotations: str = "nextgqa"  # {split}.csv, gsub_{split}.json, frame2time_{split}.json
    features: str = "features"  # <features>/<feat_type>/<feat_type>_I_<split>.h5
    feat_type: str = "CLIPL"
    train_split: str = "train"
    val_split: str = "val"  # checkpoint selection uses this split only
    test_split: str | None = "test"  # never read during training
    num_frames: int = 32  # T
    confounders: str | None = None  # confounder file (build-confounders); null: random dictionaries, warned
    same_video_prob: float = 0.3  # VQ negatives drawn from the same video
    qa_template: str = "{question}? {answer}"  # question + candidate -> one text (cra.data.dataset.QA_TEMPLATE);
    #   released: "{question} </s> {answer}" (RoBERTa's separator)
    # Released training-data draws (cra.data.augment; training split only; 0 / "type": off, ours).
    paraphrase_prob: float = 0.0  # a question -> one of its GPT-4 paraphrases (released: 0.3)
    paraphrase_file: str = "train_gpt4_sub.json"  # under <annotations>; read only when paraphrase_prob > 0
    answer_resample_prob: float = 0.0  # distractors -> right answers of same-group questions (released: 0.3)
    negative_groups: str = "type"  # pools of VQ negatives (and resampled distractors): csv "type" (ours)
    #   or "question_word" (released: get_qsn_type, cra.data.augment.question_word)
    num_workers: int = 0
    # read each split's feature file into memory once per process (NExT-GQA CLIP-L: ~0.5 GB)
    features_in_memory: bool = False
    limit: int | None = None  # use only the first N questions of each split (quick runs)
    reweight: str = "none"  # study option (cra.data.adjust): resample train by inverse propensity of "scene"
    #                         (a synthetic world's true scene) or "xhat" (frame-cluster proxy, needs X_hat)

    def __post_init__(self):
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"data.limit={self.limit}: expected null (every question) or a positive integer")
        if self.num_frames < 1 or self.num_workers < 0:
            raise ValueError(
                f"data.num_frames={self.num_frames}, data.num_workers={self.num_workers}: expected "
                "num_frames >= 1 and num_workers >= 0"
            )
        for name in ("paraphrase_prob", "answer_resample_prob", "same_video_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"data.{name}={getattr(self, name)!r}: expected a probability in [0, 1]")
        if self.negative_groups not in ("type", "question_word"):
            raise ValueError(f"data.negative_groups={self.negative_groups!r}: expected 'type' or 'question_word'")


@dataclass
class TrainConfig:
    """Optimisation (defaults: the released NExT-GQA settings, docs/paper_notes.md §6)."""

    seed: int = 2024
    device: str = "auto"  # "auto": cuda when available, else cpu; or "cpu", "cuda", "cuda:1", ...
    epochs: int = 30
    batch_size: int = 64
    lr: float = 1.0e-5
    weight_decay: float = 0.0
    amsgrad: bool = True
    warmup_epochs: float = 1.0  # linear warm-up from 0, then the decay of `schedule`
    schedule: str = "linear"  # after warm-up: "linear" to 0 (ours); "cosine" to 0.001 x lr (released; cra.schedules)
    grad_clip: float | None = 12.0  # max global gradient norm; null: no clipping
    amp: str = "off"  # "off": float32 (paper configs, as the authors trained); "auto": bfloat16 autocast on CUDA,
    #   off on CPU; "bf16"; "fp16" (CUDA, with a scaler)
    deterministic: bool = True  # deterministic algorithms (CPU runs are then bit-reproducible)
    text_mode: str = "finetune"  # "finetune" (paper) or "frozen_cached": text encoder frozen, its outputs cached
    text_bucket_size: int | str | None = "auto"  # texts per length-sorted encoder chunk; auto: 16 on CPU, off on CUDA
    #   (packed RoBERTa, model.text_encoder_kwargs.packed, computes only real tokens and buckets its attention only)
    text_checkpointing: bool | int = False  # recompute the text encoder's activations in backward: less memory,
    #   more time; true: every layer, n: the first n layers (packed RoBERTa), a memory and a time in between
    fewer_products: bool = False  # the same math with fewer matrix products (CRA.fewer_products; rounding differs)
    select_metric: str = "Acc@QA"  # a cra.metrics column, on the val split (released: val QA accuracy)
    select_readout: str = "posthoc"  # the read-out whose metrics a grounding select_metric uses
    # best.pt is replaced when the val metric is ">" the best so far (ours) or ">=" (released)
    select_compare: str = ">"
    progress: bool = True  # tqdm bar with loss and accuracy
    accumulate: int = 1  # micro-batches per optimiser step and process (CMA negatives then come from one micro-batch)
    compile: bool = False  # torch.compile the model for training (opt-in; not usable yet: Dynamo guards on the
    #   batch's candidate strings, so each new batch recompiles; benchmarks/train_step.py's docstring)

    def __post_init__(self):
        if self.text_mode not in ("finetune", "frozen_cached"):
            raise ValueError(f"train.text_mode={self.text_mode!r}: expected 'finetune' or 'frozen_cached'")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ValueError(f"train.amp={self.amp!r}: expected 'auto', 'off', 'bf16' or 'fp16'")
        if self.select_metric not in METRIC_KEYS:
            raise ValueError(f"train.select_metric={self.select_metric!r}: expected one of {METRIC_KEYS}")
        if self.select_readout not in ALL_READOUTS:
            raise ValueError(f"train.select_readout={self.select_readout!r}: expected one of {', '.join(ALL_READOUTS)}")
        if self.schedule not in ("linear", "cosine"):
            raise ValueError(f"train.schedule={self.schedule!r}: expected 'linear' or 'cosine'")
        if self.select_compare not in (">", ">="):
            raise ValueError(f"train.select_compare={self.select_compare!r}: expected '>' or '>='")
        if not (
            self.text_bucket_size in ("auto", None)
            or (isinstance(self.text_bucket_size, int) and self.text_bucket_size > 0)
        ):
            raise ValueError(
                f"train.text_bucket_size={self.text_bucket_size!r}: expected 'auto', null or a positive integer"
            )
        if not isinstance(self.text_checkpointing, int) or self.text_checkpointing < 0:
            raise ValueError(
                f"train.text_checkpointing={self.text_checkpointing!r}: expected true, false or a number of layers"
            )
        for name in ("epochs", "batch_size", "accumulate"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"train.{name}={getattr(self, name)!r}: expected a positive integer")


@dataclass
class EvalConfig:
    readouts: tuple = READOUTS  # grounding read-outs scored every epoch (cra.readouts: READOUTS, OTHER_READOUTS)
    batch_size: int = 64

    def __post_init__(self):
        self.readouts = tuple(self.readouts)
        bad = [r for r in self.readouts if r not in ALL_READOUTS]
        if bad or not self.readouts:
            raise ValueError(f"eval.readouts={list(self.readouts)}: expected some of {', '.join(ALL_READOUTS)}")


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: CRAConfig = field(default_factory=CRAConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self):
        check_model_values(self.model)


def check_model_values(model: CRAConfig) -> None:
    """Model values that would fail only inside an epoch (or give a NaN loss), refused up front."""
    sizes = model.window_sizes
    if not sizes or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in sizes):
        raise ValueError(
            f"model.window_sizes={list(sizes)}: expected one or more window lengths in frames, "
            "each a whole number >= 1 (the 'window' read-out)"
        )
    if not isinstance(model.temperature, (int, float)) or not model.temperature > 0:
        raise ValueError(
            f"model.temperature={model.temperature!r}: expected a number > 0 "
            "(the CMA loss divides the cosine similarities by it)"
        )


# --------------------------------------------------------------------------------------------
# Files and overrides
# --------------------------------------------------------------------------------------------
#: Sub-folders of ``cra/configs`` that hold layers of other schemas than :class:`RunConfig`.
OTHER_SCHEMA_FOLDERS = ("confounders/", "study/", "worlds/")


def packaged_names(folder: Path = PACKAGED_CONFIGS) -> list[str]:
    return sorted(str(p.relative_to(folder).with_suffix("")) for p in folder.rglob("*.yaml"))


def run_layer_names() -> list[str]:
    """The packaged layers of a :class:`RunConfig` (``base`` first), for ``train --config``."""
    return [n for n in packaged_names() if not n.startswith(OTHER_SCHEMA_FOLDERS)]


def config_path(name_or_path: str | Path, folder: Path = PACKAGED_CONFIGS) -> Path:
    """A YAML path as given, else the packaged config ``<folder>/<name>.yaml``."""
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return path
    packaged = folder / f"{name_or_path}.yaml"
    if packaged.is_file():
        return packaged
    raise FileNotFoundError(
        f"config {str(name_or_path)!r}: no such file, and not a packaged config (known: {packaged_names(folder)})"
    )


def read_yaml(path: Path) -> dict:
    """A YAML file holding a mapping (an empty file is an empty mapping)."""
    try:
        values = parse_yaml(Path(path).read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(values).__name__}")
    return values


def apply_overrides(values: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``values`` with each ``a.b=c`` override applied (``c`` parsed as YAML); returns a new dict.
    A malformed item or value is a :class:`ConfigError` naming the ``--set``."""
    values = dict(values)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value = parse_yaml(raw)
        except yaml.YAMLError as err:
            problem = str(err).splitlines()[0]
            raise ConfigError(f"--set {item!r}: the value {raw!r} is not valid YAML ({problem})") from None
        *parents, leaf = key.strip().split(".")
        target = values
        for depth, part in enumerate(parents):
            child = target.get(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"--set {item!r}: {'.'.join(parents[: depth + 1])} is not a mapping")
            target[part] = child = dict(child)
            target = child
        target[leaf] = value
    return values


# --------------------------------------------------------------------------------------------
# Schema checks and construction
# --------------------------------------------------------------------------------------------
def overrides_of(schema: type, **field_kwargs):
    """A ``dict`` field of a schema that holds *some* keys of another schema (``schema``), such as the
    study's ``world`` (overrides of ``WorldConfig``): its keys and scalar values are checked against
    ``schema`` layer by layer; like a free-form dict, a file layer replaces it and a ``--set`` merges
    into it; it stays a dict."""
    return field(metadata={"overrides_of": schema}, **field_kwargs)


def _hints(schema: type) -> dict[str, Any]:
    return typing.get_type_hints(schema)


def _sections(schema: type) -> dict[str, type]:
    """Field name -> the schema of its keys, for dataclass sections and :func:`overrides_of` fields."""
    hints = _hints(schema)
    out = {name: hint for name, hint in hints.items() if dataclasses.is_dataclass(hint)}
    out.update({f.name: f.metadata["overrides_of"] for f in dataclasses.fields(schema) if "overrides_of" in f.metadata})
    return out


def check_keys(values: Mapping[str, Any], schema: type, where: str, prefix: str = "") -> None:
    """Raise :class:`ConfigError` for a key of ``values`` that ``schema`` (a dataclass) lacks."""
    hints, sections = _hints(schema), _sections(schema)
    for key, value in values.items():
        if key not in hints:
            raise ConfigError(
                f"{where}: unknown key {prefix + str(key)!r}; known keys"
                f"{' in ' + prefix.rstrip('.') if prefix else ''}: {sorted(hints)}"
            )
        if key in sections:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {prefix + key} must be a mapping, got {value!r}")
            check_keys(value, sections[key], where, f"{prefix}{key}.")


def check_values(values: Mapping[str, Any], schema: type, where: str, prefix: str = "") -> None:
    """:func:`check_keys`, then every scalar value against its field's type (:func:`check_scalar`);
    a problem is a :class:`ConfigError` naming ``where`` (a file or a ``--set``) and the key."""
    check_keys(values, schema, where, prefix)
    hints, sections = _hints(schema), _sections(schema)
    for key, value in values.items():
        if key in sections:
            check_values(value, sections[key], where, f"{prefix}{key}.")
        else:
            try:
                check_scalar(hints[key], value, prefix + key)
            except ConfigError as err:
                raise ConfigError(f"{where}: {err}") from None


def merge(
    base: Mapping[str, Any], layer: Mapping[str, Any], schema: type | None = None, merge_free: bool = False
) -> dict[str, Any]:
    """``layer`` on top of ``base``: sections (dataclass fields of ``schema``) merge key by key, other
    values replace. A free-form ``dict`` field is replaced by a file layer (a new text encoder's
    keyword arguments must not inherit the old one's) and merged by a ``--set`` (``merge_free``)."""
    hints = _hints(schema) if schema is not None else {}
    out = dict(base)
    for key, value in layer.items():
        sub = hints.get(key)
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            if sub is not None and dataclasses.is_dataclass(sub):
                out[key] = merge(out[key], value, sub, merge_free)
                continue
            if schema is None or merge_free:
                out[key] = merge(out[key], value)
                continue
        out[key] = value
    return out


def check_scalar(hint: Any, value: Any, key: str) -> Any:
    """``value`` checked against a scalar type hint (``int``, ``float``, ``bool``, ``str``, or one of
    them ``| None``): an int is accepted for a float; anything else wrong is a :class:`ConfigError`."""
    allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if not all(t in (int, float, bool, str, type(None)) for t in allowed):
        return value  # containers and free-form fields: checked by the code that uses them
    if value is None and type(None) in allowed:
        return value
    if isinstance(value, bool):
        ok = bool in allowed
    elif isinstance(value, int):
        ok = int in allowed or float in allowed
        value = value if int in allowed or not ok else float(value)
    else:
        ok = isinstance(value, tuple(t for t in allowed if t is not type(None)))
    if not ok:
        names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
        raise ConfigError(f"{key}={value!r}: expected {names}")
    return value


def from_dict(schema: type, values: Mapping[str, Any], prefix: str = ""):
    """Build the dataclass ``schema`` from (checked) ``values``; a bad value names its key."""
    hints, sections = _hints(schema), _sections(schema)
    kwargs = {}
    for key, value in values.items():
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = from_dict(hints[key], value, f"{prefix}{key}.")
        elif key in sections:  # overrides of another schema: checked, kept a dict
            inner = _hints(sections[key])
            kwargs[key] = {k: check_scalar(inner[k], v, f"{prefix}{key}.{k}") for k, v in value.items()}
        else:
            kwargs[key] = check_scalar(hints[key], value, f"{prefix}{key}")
    try:
        return schema(**kwargs)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{prefix.rstrip('.') or schema.__name__}: {err}") from None


def to_dict(config) -> dict:
    """A plain, YAML-ready dict (tuples become lists)."""

    def plain(x):
        if isinstance(x, dict):
            return {k: plain(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [plain(v) for v in x]
        return x

    return plain(dataclasses.asdict(config))


def defaults(schema: type) -> dict[str, Any]:
    """The dataclass defaults of ``schema`` as a nested dict (fields without a default are left out):
    the bottom layer of :func:`load_layers`, the one home of every default."""
    hints, out = _hints(schema), {}
    for f in dataclasses.fields(schema):
        if dataclasses.is_dataclass(hints[f.name]):
            out[f.name] = defaults(hints[f.name])
        elif f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def load_layers(
    schema: type,
    layers: Sequence[str | Path],
    overrides: Sequence[str] = (),
    *,
    folder: Path = PACKAGED_CONFIGS,
    first: str | None = "base",
) -> tuple[Any, list[str]]:
    """``schema`` built from its dataclass defaults, then ``first`` (a packaged layer), ``layers``
    (YAML paths or names under ``folder``), then ``overrides`` (``--set a.b=c`` items).

    Returns the config and the list of sources used (file paths, then the ``--set`` items).
    """
    merged, sources = defaults(schema), []
    names = ([first] if first else []) + list(layers)
    for name in names:
        path = config_path(name, folder)
        values = read_yaml(path)
        check_values(values, schema, str(path))
        merged = merge(merged, values, schema)
        sources.append(str(path))
    for item in overrides:
        values = apply_overrides({}, [item])
        check_values(values, schema, f"--set {item}")
        merged = merge(merged, values, schema, merge_free=True)
        sources.append(f"--set {item}")
    return from_dict(schema, merged), sources


def load_run_config(layers: Sequence[str | Path], overrides: Sequence[str] = ()) -> tuple[RunConfig, list[str]]:
    """:class:`RunConfig` from ``base.yaml`` + ``layers`` + ``overrides`` (see the module docstring)."""
    return load_layers(RunConfig, layers, overrides)
