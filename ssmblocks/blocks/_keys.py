"""Holding a module under an official checkpoint key path: the one idiom every block and model uses.

Official checkpoints name tensors by the attribute paths of the authors' modules (``patch_embed.norm.weight``,
``layers.0.residual_group.blocks.3...``). Where the library's module tree is flatter than the authors', the module is
wrapped in nested ``nn.ModuleDict`` containers spelling the rest of the path — never in an ad-hoc holder class.
"""

from __future__ import annotations

from torch import nn

__all__ = ["keyed", "resolve"]


def keyed(path: str, module: nn.Module) -> nn.ModuleDict:
    """``module`` inside nested ModuleDicts so that it sits at the dotted ``path`` below the attribute holding the
    result: ``self.patch_embed = keyed("norm", nn.LayerNorm(c))`` gives keys ``patch_embed.norm.weight/bias``."""
    head, _, rest = path.partition(".")
    if not head:
        raise ValueError(f"a key path needs at least one name, got {path!r}")
    return nn.ModuleDict({head: keyed(rest, module) if rest else module})


def resolve(root: nn.Module, path: str) -> nn.Module:
    """The module at the dotted ``path`` below ``root`` (the inverse of ``keyed``)."""
    module = root
    for name in path.split("."):
        module = module._modules[name]    # not getattr: a property of the same name must not shadow the child
    return module
