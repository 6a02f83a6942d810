"""mkdocs hook: replaces ``<!-- zoo-table -->`` with the table of every registered model, made from the registry."""

from __future__ import annotations

import ssmblocks


def _params(name: str) -> str:
    import torch

    with torch.device("meta"):
        model = ssmblocks.create_model(name)
    return f"{sum(p.numel() for p in model.parameters()):,}"


def zoo_table() -> str:
    rows = ["| model | tags | task | scale | input | params | weights | licence |", "|---|---|---|---|---|---|---|---|"]
    for arch in ssmblocks.list_models():
        cfg = ssmblocks.get_pretrained_cfg(arch)
        tags = [n.split(".", 1)[1] for n in ssmblocks.list_models(f"{arch}.*", pretrained=True)] or [cfg.tag]
        source = cfg.source or "none published"
        rows.append(f"| `{arch}` | {', '.join(tags)} | {cfg.task} | x{cfg.scale} | {cfg.input_kind} | "
                    f"{_params(arch)} | {source} | {cfg.license} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return markdown.replace("<!-- zoo-table -->", zoo_table()) if "<!-- zoo-table -->" in markdown else markdown
