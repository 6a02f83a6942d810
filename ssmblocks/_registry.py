"""Model registry: architectures, their pretrained configurations, and name look-up (timm-style).

Names are ``architecture.tag``; a bare architecture resolves to its default (first registered) tag. Each model
family module registers its entry points with ``@register_model`` and its configurations with ``register_cfgs``
when it is imported (``ssmblocks.zoo`` imports every family); the module an entry point comes from is recorded
with it (``model_module``, ``list_models(module=...)``), as timm does. The public face of this machinery, for
families outside the library, is ``ssmblocks.registry``.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# The fields of a PretrainedCfg that locate or identify a release's weight file.
WEIGHT_SOURCE_FIELDS = ("file", "hf_hub_id", "hf_hub_filename", "url", "sha256", "gdrive_id", "gdrive_folder_id",
                        "manual_url", "manual_filename", "fallback_url", "weights_key")


@dataclass(frozen=True)
class PretrainedCfg:
    """Where a model's weights come from and what they are: source, licence, protocol, published numbers.

    Weight sources, in priority order: ``file`` (a local path), ``hf_hub_id`` (+ ``hf_hub_filename``, which may be
    a glob such as ``"*.pth"`` matching exactly one file of the repo), ``url``, ``gdrive_id`` (a Google Drive file)
    or ``gdrive_folder_id`` (a Drive folder holding the file named ``manual_filename``; for authors who publish a
    folder link only), ``manual_url`` (a page to download from by hand; the loader explains what to do). Drive
    files are downloaded with the optional ``gdown`` package when it is installed, else the loader explains what to
    do. ``fallback_url`` is a second place a person can download the file from, named in errors. A cfg with none
    of them describes an architecture without released weights.

    ``sha256`` checks downloaded (URL, Drive) files and identifies a release's file in ``load_checkpoint``: the
    whole hex digest, or a prefix of at least 8 hex digits (BasicSR and ``torch.hub`` name files
    ``name-<first 8 digits>.pth``, which is all that is known of some releases).

    ``weights_key`` names the set of weights this release is, in a file holding several (a self-describing format
    of ``ssmblocks.registry.register_checkpoint_format``, e.g. EAMamba's 'sd_e' and 'sd'); None: the default one.

    ``protocol`` NAMES the ``ssmblocks.restore`` preset that runs the official test procedure ('mambair',
    'mambacsr', 'dvmsr', 'medvsr', ..., or '' for the whole image); ``test_protocol`` DESCRIBES the whole official
    evaluation in words (data, metric, colour space, border). ``metrics`` are the published numbers of this release.

    A cfg records a weight release, not the model: what the model takes and returns (scale, channels, size rules,
    image or video, half-precision support) is the model's ``contract`` (``ssmblocks.ModelContract``), derived from
    its hyperparameters.
    """

    architecture: str = ""
    tag: str = ""
    file: str | None = None
    hf_hub_id: str | None = None
    hf_hub_filename: str = "model.safetensors"
    url: str | None = None
    sha256: str | None = None
    gdrive_id: str | None = None
    gdrive_folder_id: str | None = None
    manual_url: str | None = None
    manual_filename: str | None = None
    fallback_url: str | None = None
    weights_key: str | None = None
    license: str = ""
    paper: str = ""
    origin_url: str = ""
    task: str = ""
    test_protocol: str = ""
    protocol: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    notes: str = ""

    def __post_init__(self) -> None:
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
            raise ValueError(f"sha256 must be a lowercase hex digest or a prefix of at least 8 of its digits, "
                             f"got {self.sha256!r}")
        if self.gdrive_folder_id and not self.manual_filename:
            raise ValueError("a gdrive_folder_id source needs manual_filename: the name of the file in that folder")

    @property
    def name(self) -> str:
        return f"{self.architecture}.{self.tag}" if self.tag else self.architecture

    @property
    def source(self) -> str | None:
        """'file', 'hf-hub', 'url', 'gdrive' (a file or folder), 'manual', or None when no weights are published."""
        for attr, source in (("file", "file"), ("hf_hub_id", "hf-hub"), ("url", "url"), ("gdrive_id", "gdrive"),
                             ("gdrive_folder_id", "gdrive"), ("manual_url", "manual")):
            if getattr(self, attr):
                return source
        return None

    @property
    def has_weights(self) -> bool:
        return self.source is not None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def without_weight_source(self) -> dict[str, Any]:
        """The cfg as a dict without the fields that say where the release's weight file is and what it holds
        (``WEIGHT_SOURCE_FIELDS``): what a re-exported model, which has its own file, keeps of it."""
        return {k: v for k, v in self.to_dict().items() if k not in WEIGHT_SOURCE_FIELDS}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainedCfg:
        """The cfg of a dict (config.json's ``pretrained_cfg``): unknown fields are ignored (older or newer
        versions), known ones must have their type — a TypeError names the first that does not."""
        if not isinstance(data, dict):
            raise TypeError(f"a pretrained cfg is an object of fields, got {type(data).__name__}")
        values = {}
        for f in dataclasses.fields(cls):
            if f.name not in data:
                continue
            value, allowed = data[f.name], _FIELD_TYPES[f.name]
            if not isinstance(value, allowed):
                names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
                raise TypeError(f"pretrained cfg field {f.name!r} must be {names}, got {value!r}")
            values[f.name] = value
        return cls(**values)


# the JSON types each field may take in a config.json (every field is a str, an optional str or the metrics dict)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    f.name: (dict,) if f.name == "metrics" else (str,) if f.type == "str" else (str, type(None))
    for f in dataclasses.fields(PretrainedCfg)}

_entrypoints: dict[str, Callable[..., Any]] = {}
_model_modules: dict[str, str] = {}
_cfgs: dict[str, dict[str, PretrainedCfg]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: registers ``fn`` (which builds the model from keyword arguments) under its own name, and the
    module it is defined in (its last component: ``mambair`` for ``ssmblocks.zoo.mambair``)."""
    if fn.__name__ in _entrypoints:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _entrypoints[fn.__name__] = fn
    _model_modules[fn.__name__] = fn.__module__
    return fn


def model_module(name: str, full: bool = False) -> str:
    """The module that registered architecture ``name`` (or ``name.tag``): its last component ('mambair'), or with
    ``full`` its import path ('ssmblocks.zoo.mambair'; what must be imported to build a custom model)."""
    arch, _ = split_model_name(name)
    model_entrypoint(arch)
    return _model_modules[arch] if full else _model_modules[arch].rpartition(".")[2]


def is_builtin(name: str) -> bool:
    """True for the architectures of the library's own zoo (``ssmblocks.zoo``), False for custom registrations."""
    return model_module(name, full=True).startswith("ssmblocks.")


def list_modules() -> list[str]:
    """The modules that registered models (last components), sorted."""
    return sorted({module.rpartition(".")[2] for module in _model_modules.values()})


def register_cfgs(cfgs: dict[str, PretrainedCfg]) -> None:
    """Registers pretrained cfgs keyed 'architecture.tag' (the first tag of an architecture is its default)."""
    for name, cfg in cfgs.items():
        arch, tag = split_model_name(name)
        _cfgs.setdefault(arch, {})[tag] = dataclasses.replace(cfg, architecture=arch, tag=tag)


def split_model_name(name: str) -> tuple[str, str]:
    arch, _, tag = name.partition(".")
    return arch, tag


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, list(_entrypoints) + list_pretrained(), n=5, cutoff=0.5)
    hint = f" Did you mean: {', '.join(close)}?" if close else " See ssmblocks.list_models()."
    return ValueError(f"unknown model {name!r}.{hint} A model of your own is known once the module that registers "
                      f"it is imported (command line: ssmblocks --import MODULE ...).")


def model_entrypoint(arch: str) -> Callable[..., Any]:
    if arch not in _entrypoints:
        raise _unknown(arch)
    return _entrypoints[arch]


def is_model(name: str) -> bool:
    """True if ``name`` (an architecture, or architecture.tag with a registered tag) can be built."""
    arch, tag = split_model_name(name)
    return arch in _entrypoints and (not tag or tag in _cfgs.get(arch, {}))


def get_pretrained_cfg(name: str) -> PretrainedCfg:
    """The cfg of 'architecture.tag' (the default tag for a bare architecture). Raises ValueError if unknown."""
    arch, tag = split_model_name(name)
    model_entrypoint(arch)
    tags = _cfgs.get(arch, {})
    if not tags:
        return PretrainedCfg(architecture=arch)
    if not tag:
        return next(iter(tags.values()))
    if tag not in tags:
        raise ValueError(f"{arch!r} has no pretrained tag {tag!r}; its tags: {', '.join(tags)}")
    return tags[tag]


def list_models(filter: str | Iterable[str] = "", pretrained: bool = False,
                exclude_filters: str | Iterable[str] = (), module: str = "") -> list[str]:
    """Sorted architecture names (or, with ``pretrained=True``, 'architecture.tag' names that have weights),
    matching any of the fnmatch patterns in ``filter`` and none in ``exclude_filters``, registered by ``module``
    when one is given (see ``list_modules``)."""
    if pretrained:
        names = [cfg.name for tags in _cfgs.values() for cfg in tags.values() if cfg.has_weights]
    else:
        names = list(_entrypoints)
    if module:
        names = [n for n in names if _model_modules.get(split_model_name(n)[0], "").rpartition(".")[2] == module]
    patterns = [filter] if isinstance(filter, str) else list(filter)
    if any(patterns):
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns if p)]
    excludes = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
    names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in excludes)]
    return sorted(names)


def list_pretrained(filter: str = "") -> list[str]:
    """'architecture.tag' names that have published weights."""
    return list_models(filter, pretrained=True)
