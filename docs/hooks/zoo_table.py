"""mkdocs hook: replaces ``<!-- zoo-table -->`` with the table of every registered model, made from the registry."""

from __future__ import annotations

import ssmblocks


def _meta_model(name: str):
    import torch

    with torch.device("meta"):
        return ssmblocks.create_model(name)


def zoo_table() -> str:
    rows = ["| model | tags | task | scale | input | params | weights | licence |", "|---|---|---|---|---|---|---|---|"]
    for arch in ssmblocks.list_models():
        cfg = ssmblocks.get_pretrained_cfg(arch)
        model = _meta_model(arch)
        contract = model.contract
        tags = [n.split(".", 1)[1] for n in ssmblocks.list_models(f"{arch}.*", pretrained=True)] or [cfg.tag]
        source = cfg.source or "none published"
        rows.append(f"| `{arch}` | {', '.join(tags)} | {cfg.task} | x{contract.scale} | {contract.input_kind} | "
                    f"{sum(p.numel() for p in model.parameters()):,} | {source} | {cfg.license} |")
    return "\n".join(rows)


def on_page_markdown(markdown: str, **kwargs) -> str:
    return markdown.replace("<!-- zoo-table -->", zoo_table()) if "<!-- zoo-table -->" in markdown else markdown
