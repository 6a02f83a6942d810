"""Model registry: architectures, their pretrained configurations, and name look-up (timm-style).

Names are ``architecture.tag``; a bare architecture resolves to its default (first registered) tag. Each model
family module registers its entry points with ``@register_model`` and its configurations with ``register_cfgs``
when it is imported (``ssmblocks.zoo`` imports every family).
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "PretrainedCfg",
    "get_pretrained_cfg",
    "is_model",
    "list_models",
    "list_pretrained",
    "model_entrypoint",
    "register_cfgs",
    "register_model",
    "split_model_name",
]


# The fields of a PretrainedCfg that locate or identify a release's weight file.
WEIGHT_SOURCE_FIELDS = ("file", "hf_hub_id", "hf_hub_filename", "url", "sha256", "gdrive_id", "gdrive_folder_id",
                        "manual_url", "manual_filename", "fallback_url")


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

    ``protocol`` names the official test procedure of ``ssmblocks.restore`` ('mambair', 'mambacsr', 'dvmsr',
    'medvsr', or '' for the whole image); ``test_protocol`` describes the whole evaluation in words.
    ``input_kind`` is 'image' (B, C, H, W) or 'video' (B, T, C, H, W); video models need ``min_frames`` frames.
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
    license: str = ""
    paper: str = ""
    origin_url: str = ""
    task: str = ""
    test_protocol: str = ""
    protocol: str = ""
    input_kind: str = "image"
    min_frames: int = 1
    scale: int = 1
    in_chans: int = 3
    out_chans: int = 3
    min_size: int = 1
    multiple_of: int = 1
    supports_fp16: bool = False
    supports_bf16: bool = True
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
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


_entrypoints: dict[str, Callable[..., Any]] = {}
_cfgs: dict[str, dict[str, PretrainedCfg]] = {}


def register_model(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator: registers ``fn`` (which builds the model from keyword arguments) under its own name."""
    if fn.__name__ in _entrypoints:
        raise ValueError(f"model {fn.__name__!r} is registered twice")
    _entrypoints[fn.__name__] = fn
    return fn


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
    return ValueError(f"unknown model {name!r}.{hint}")


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
                exclude_filters: str | Iterable[str] = ()) -> list[str]:
    """Sorted architecture names (or, with ``pretrained=True``, 'architecture.tag' names that have weights),
    matching any of the fnmatch patterns in ``filter`` and none in ``exclude_filters``."""
    if pretrained:
        names = [cfg.name for tags in _cfgs.values() for cfg in tags.values() if cfg.has_weights]
    else:
        names = list(_entrypoints)
    patterns = [filter] if isinstance(filter, str) else list(filter)
    if any(patterns):
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns if p)]
    excludes = [exclude_filters] if isinstance(exclude_filters, str) else list(exclude_filters)
    names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in excludes)]
    return sorted(names)


def list_pretrained(filter: str = "") -> list[str]:
    """'architecture.tag' names that have published weights."""
    return list_models(filter, pretrained=True)
