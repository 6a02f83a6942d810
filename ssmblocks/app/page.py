"""The page itself: a Gradio ``Blocks`` app over ``ssmblocks.app.models`` and ``ssmblocks.app.jobs``.

Left: the model picker (published releases, or a checkpoint file), the files to restore, and the options the model
has (tiling and memory budget, device, precision, routing, frames per chunk for video models). Right: the messages,
a before/after slider with zoom (mouse wheel) and pan, the results (click one to compare it), a restored video,
and the files to download (PNG, and the original's format where it has one). Every handler turns a failure into a
message in the page.

Facts about Gradio's API (``Blocks``, ``ImageSlider``, ``File``, ``Gallery``, ``Progress(track_tqdm=True)``,
``SelectData``, ``launch``) are from gradio 6.31.0.
"""

from __future__ import annotations

import html
import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")   # read by Gradio at import: no telemetry
import gradio as gr

import ssmblocks
from ssmblocks.app.jobs import DEFAULT_MAX_PIXELS, TILING_MODES, RunSettings, run_batch
from ssmblocks.app.models import (
    CHECKPOINT_CHOICE,
    ModelLoader,
    available_devices,
    dtype_choices,
    model_choices,
    model_facts,
    runtime_options,
)
from ssmblocks.demo import DEFAULT_MODEL

__all__ = ["CSS", "build_app"]

_log = logging.getLogger(__name__)
# Result folders older than this are removed when a new run starts (the page keeps recent results downloadable).
_KEEP_RESULTS_S = 3600
CSS = """
#ssm-status ul { margin: 0; padding-left: 1.2em; }
#ssm-status li.failed { color: #b91c1c; }
"""


def _html_list(lines: list[tuple[str, bool]]) -> str:
    """One list item per (text, ok); failures get the class "failed" (shown in red)."""
    items = "".join(f'<li class="{"ok" if ok else "failed"}">{html.escape(text)}</li>' for text, ok in lines)
    return f"<ul>{items}</ul>"


def _paragraph(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _about(model: Any) -> str:
    """What the picked model is and takes, for the page."""
    cfg, facts = model.pretrained_cfg, model_facts(model)
    kind = f"videos (at least {facts.min_frames} frames)" if facts.video else "images"
    channels = {1: "grey", 3: "colour"}.get(facts.in_chans, f"{facts.in_chans}-channel")
    what = [f"{getattr(model, 'architecture', type(model).__name__)}: {cfg.task or 'restoration'}",
            f"x{facts.scale}, {channels} {kind}"]
    if cfg.license:
        what.append(f"licence {cfg.license}")
    if cfg.notes:
        what.append(cfg.notes)
    return _paragraph(" · ".join(what))


def _prune(folder: Path) -> None:
    """Removes result folders older than ``_KEEP_RESULTS_S``."""
    for run in folder.glob("run-*"):
        if time.time() - run.stat().st_mtime > _KEEP_RESULTS_S:
            shutil.rmtree(run, ignore_errors=True)


def _failed(action: str, err: Exception) -> str:
    _log.info("%s failed", action, exc_info=err)
    return _html_list([(f"{action} failed: {' '.join(str(err).split()) or type(err).__name__}", False)])


def build_app(*, max_pixels: int = DEFAULT_MAX_PIXELS, results: str | Path | None = None) -> gr.Blocks:
    """The page. ``results``: the folder results are written to (default: a new temporary folder, which
    ``ssmblocks.app.serve`` removes when the server stops); ``max_pixels``: the largest image restored."""
    results = Path(results) if results is not None else Path(tempfile.mkdtemp(prefix="ssmblocks-app-"))
    loader = ModelLoader()
    choices = model_choices()
    default = next((value for _, value in choices if value.split(".")[0] == DEFAULT_MODEL), choices[0][1])

    def on_model(choice: str, checkpoint: str | None) -> tuple[Any, ...]:
        """Loads the picked model; updates what is said about it and the options it has."""
        show_file = gr.File(visible=choice == CHECKPOINT_CHOICE)
        hidden = (gr.Dropdown(choices=["float32"], value="float32"), gr.Dropdown(visible=False),
                  gr.Number(visible=False))
        if choice == CHECKPOINT_CHOICE and not checkpoint:
            return show_file, _paragraph("choose a checkpoint file (.pth or .safetensors)"), *hidden
        try:
            model = loader.get(choice, checkpoint)
        except Exception as err:
            return show_file, _failed("loading the model", err), *hidden
        facts, routing = model_facts(model), runtime_options(model).get("routing", ())
        return (show_file, _about(model), gr.Dropdown(choices=dtype_choices(facts), value="float32"),
                gr.Dropdown(choices=list(routing), value=routing[0] if routing else None, visible=bool(routing)),
                gr.Number(visible=facts.video))

    def on_tiling(mode: str) -> tuple[Any, ...]:
        return (gr.Number(visible=mode == "tiles"), gr.Number(visible=mode == "tiles"),
                gr.Textbox(visible=mode in ("auto", "budget")))

    def on_run(choice: str, checkpoint: str | None, files: list[str] | None, tiling: str, tile: float,
               overlap: float, budget: str, device: str, dtype: str, routing: str | None, chunk: float,
               progress: gr.Progress = gr.Progress(track_tqdm=True)) -> tuple[Any, ...]:  # noqa: B008
        nothing = (None, [], gr.Video(value=None, visible=False), None, [])
        try:
            model = loader.get(choice, checkpoint, {"routing": routing}, dtype=dtype)
        except Exception as err:
            return _failed("loading the model", err), *nothing
        settings = RunSettings(tiling=tiling, tile=int(tile or 0), tile_overlap=int(overlap or 0),
                               memory_budget=budget or "", device=device,
                               temporal_chunk=int(chunk) if chunk else None)
        _prune(results)
        folder = results / f"run-{uuid.uuid4().hex[:12]}"
        folder.mkdir(parents=True)
        outcomes = run_batch(model, files or [], settings, folder, max_pixels=max_pixels,
                             progress=lambda fraction, text: progress(fraction, desc=text))
        done = [o for o in outcomes if o.ok]
        pairs = [(str(o.before), str(o.after)) for o in done]
        gallery = [(str(o.after), o.name) for o in done]
        video = next((o.video for o in done if o.video), None)
        downloads = [str(path) for o in done for path in o.downloads] or None
        status = _html_list([(o.message, o.ok) for o in outcomes])
        return (status, pairs[0] if pairs else None, gallery,
                gr.Video(value=str(video) if video else None, visible=video is not None), downloads, pairs)

    def on_select(pairs: list[tuple[str, str]], event: gr.SelectData) -> Any:
        return tuple(pairs[event.index]) if 0 <= event.index < len(pairs) else None

    with gr.Blocks(title="ssmblocks: restore images", analytics_enabled=False, delete_cache=(3600, 3600)) as app:
        gr.Markdown(f"## ssmblocks {ssmblocks.__version__}: restore images with state-space (Mamba) models\n"
                    "Pick a model, drop images (a short video for video models), press **Restore**. Everything runs "
                    "on this computer.")
        with gr.Row():
            with gr.Column(scale=1):
                picker = gr.Dropdown(choices=choices, value=default, label="Model", elem_id="ssm-model")
                checkpoint = gr.File(label="Checkpoint file (.pth, .safetensors)", visible=False,
                                     elem_id="ssm-checkpoint")
                about = gr.HTML(elem_id="ssm-about")
                files = gr.File(label="Images (or a short video)", file_count="multiple", elem_id="ssm-inputs")
                with gr.Accordion("Options", open=False):
                    tiling = gr.Radio([(label, key) for key, label in TILING_MODES.items()], value="auto",
                                      label="Tiling", elem_id="ssm-tiling")
                    tile = gr.Number(256, label="Tile side (input pixels)", precision=0, minimum=8, visible=False)
                    overlap = gr.Number(32, label="Tile overlap (input pixels)", precision=0, minimum=0,
                                        visible=False)
                    budget = gr.Textbox("4GB", label="Memory budget (e.g. 2GB, 512MB)")
                    devices = available_devices()
                    device = gr.Dropdown(devices, value=next((d for d in devices if d.startswith("cuda")), "cpu"),
                                         label="Device")
                    dtype = gr.Dropdown(["float32"], value="float32", label="Precision")
                    routing = gr.Dropdown([], label="Routing", visible=False)
                    chunk = gr.Number(0, label="Frames per chunk (0: the whole clip at once)", precision=0,
                                      minimum=0, visible=False)
                run = gr.Button("Restore", variant="primary", elem_id="ssm-run")
            with gr.Column(scale=2):
                status = gr.HTML(elem_id="ssm-status")
                slider = gr.ImageSlider(label="Before (enlarged input) / after; scroll to zoom, drag to pan",
                                        type="filepath", format="png", interactive=False, elem_id="ssm-slider")
                gallery = gr.Gallery(label="Results: click one to compare it above", columns=6, height=200,
                                     fit_columns=False, allow_preview=False, object_fit="contain",
                                     elem_id="ssm-gallery")
                video = gr.Video(label="Restored video", interactive=False, visible=False, elem_id="ssm-video")
                downloads = gr.File(label="Download", file_count="multiple", interactive=False,
                                    elem_id="ssm-downloads")
        pairs = gr.State([])

        model_outputs = [checkpoint, about, dtype, routing, chunk]
        picker.change(on_model, [picker, checkpoint], model_outputs)
        checkpoint.change(on_model, [picker, checkpoint], model_outputs)
        app.load(on_model, [picker, checkpoint], model_outputs)
        tiling.change(on_tiling, [tiling], [tile, overlap, budget])
        run.click(on_run, [picker, checkpoint, files, tiling, tile, overlap, budget, device, dtype, routing, chunk],
                  [status, slider, gallery, video, downloads, pairs])
        gallery.select(on_select, [pairs], [slider])
    app.ssm_results = results
    return app
