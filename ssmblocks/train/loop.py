"""The training loop: one readable function that trains a zoo model (or any module) on one CPU or, under torchrun,
on many devices with DistributedDataParallel.

Per step: a batch of (lq, gt) pairs -> loss (L1, Charbonnier, VSRM's FCL, or distillation from a teacher) under
bf16 autocast when asked and the model's cfg allows it -> backward -> gradient clipping -> AdamW/Adam step ->
warm-up + cosine learning rate -> EMA update. Rank 0 logs (log.jsonl, progress bar, TensorBoard when installed),
validates and saves; every rank can resume from the saved state and continues exactly.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

import ssmblocks
from ssmblocks._checkpoint import CHECKPOINT_SUFFIXES, load_state_dict_strict
from ssmblocks._contract import declared_contract
from ssmblocks.losses import CharbonnierLoss, FrequencyCharbonnierLoss
from ssmblocks.train.data import TASKS, Degradation, PairedFrames, ShardedBatchSampler
from ssmblocks.train.distributed import Distributed
from ssmblocks.train.ema import ModelEma
from ssmblocks.train.state import (
    clear_leftovers,
    export_weights,
    holds_run,
    load_state,
    rng_state,
    save_state,
    set_rng_state,
    write_json,
)
from ssmblocks.train.validate import validate

__all__ = ["LOSSES", "TrainConfig", "train", "warmup_cosine"]

LOSSES = {"l1": nn.L1Loss, "charbonnier": CharbonnierLoss, "fcl": FrequencyCharbonnierLoss}
OPTIMIZERS = {"adamw": torch.optim.AdamW, "adam": torch.optim.Adam}
# arguments a resumed run must share with the run it continues (others, such as --steps or --lr, may change)
_RESUME_KEYS = ("model", "model_kwargs", "task", "scale", "batch_size", "patch_size", "frames", "seed", "loss",
                "optimizer", "ema_decay", "teacher")


def _option(text: str, default: Any = dataclasses.MISSING, **extra: Any) -> Any:
    """A TrainConfig field whose command-line help ``text`` (and choices) live in its metadata."""
    return field(default=default, metadata={"help": text, **extra})


@dataclass
class TrainConfig:
    """Every option of a run: the command-line flags of ``ssmblocks train`` (``--batch-size`` for ``batch_size``),
    generated from these fields, their defaults and their ``help``."""

    model: str = _option("registered model name (`ssmblocks list`)")
    data: str = _option("folder of high-quality images (or of frame folders with --frames)")
    out: str = _option("output folder: config.json + model.safetensors, log.jsonl, training_state.pt")
    task: str = _option("how inputs are made from --data: bicubic downscaling, JPEG, or Gaussian noise", "sr",
                        choices=TASKS)
    scale: int | None = _option("upscaling factor (default: the model's; must match it)", None)
    lq_data: str | None = _option("folder of ready-made inputs, same file names as --data (instead of degrading on "
                                  "the fly)", None)
    val_data: str | None = _option("held-out high-quality images; PSNR/SSIM logged at the end and every "
                                   "--val-every steps", None)
    val_lq_data: str | None = _option("ready-made inputs for --val-data", None)
    frames: int = _option("video models: clips of this many consecutive frames from the frame folders of --data "
                          "(0: images)", 0)
    data_cache: str | None = _option("folder for decoded frames as uncompressed .npy files, decoded once and read a "
                                     "patch at a time (disk: the uncompressed size of the data); samples are "
                                     "identical without it", None)
    jpeg_quality: int | None = _option("JPEG quality of the inputs (task jpeg; with task sr: compressed SR)", None)
    noise_sigma: float = _option("Gaussian noise standard deviation on the 0-255 scale (task denoise)", 25.0)
    steps: int = _option("optimiser steps", 1000)
    batch_size: int = _option("patches per step and process", 8)
    patch_size: int = _option("side of the ground-truth patches (a multiple of the scale)", 64)
    lr: float = _option("peak learning rate", 2e-4)
    min_lr_ratio: float = _option("final learning rate of the cosine, as a fraction of --lr", 0.0)
    warmup_steps: int = _option("linear warm-up steps", 0)
    optimizer: str = _option("optimiser", "adamw", choices=tuple(OPTIMIZERS))
    weight_decay: float = _option("weight decay", 0.0)
    betas: tuple[float, float] = _option("Adam betas", (0.9, 0.99))
    clip_grad: float = _option("maximum gradient norm (0: no clipping)", 0.0)
    ema_decay: float = _option("keep an EMA of the weights with this decay (e.g. 0.999; 0: off); exported weights "
                               "are the EMA's", 0.0)
    loss: str = _option("pixel loss: L1, Charbonnier, or VSRM's Frequency Charbonnier-like loss", "l1",
                        choices=tuple(LOSSES))
    bf16: bool = _option("bf16 autocast (only for models that support it)", False)
    model_kwargs: dict[str, Any] = field(default_factory=dict, metadata={
        "help": "JSON object of model constructor arguments, e.g. '{\"embed_dim\": 48}'"})
    init_checkpoint: str | None = _option("start from these weights (fine-tuning): a weight file, or the name of a "
                                          "model with published weights (e.g. dvmsr)", None)
    teacher: str | None = _option("distil from this zoo model (needs --teacher-checkpoint)", None)
    teacher_checkpoint: str | None = _option("the teacher's weights", None)
    distill_weight: float = _option("weight of the feature-distillation term (the pixel term has weight 1; "
                                    "DVMSR: 1)", 1.0)
    seed: int = _option("seed of the initial weights, the data order and every augmentation", 0)
    workers: int = _option("data-loading processes per training process", 0)
    log_every: int = _option("log the mean loss every N steps", 10)
    save_every: int = _option("save weights and the resumable state every N steps", 500)
    val_every: int = _option("validate every N steps (0: only at the end)", 0)
    val_y_channel: bool = _option("validation metrics on the Y channel (BasicSR's test_y_channel)", False)
    resume: bool = _option("continue the run saved in --out", False)
    overwrite: bool = _option("start a new run in an --out folder that holds one, replacing it (without it, and "
                              "without --resume, such a folder is refused)", False)
    stop_after: int | None = _option("stop after this step with the state saved, as an interruption would (then "
                                     "--resume)", None)
    progress: bool = _option("progress bar", True)


def warmup_cosine(steps: int, warmup_steps: int, min_ratio: float) -> Any:
    """The learning-rate factor of step s: linear warm-up over ``warmup_steps``, then a cosine from 1 to
    ``min_ratio`` at ``steps``."""
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = min(1.0, (step - warmup_steps) / max(1, steps - warmup_steps))
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
    return factor


class _Supervised(nn.Module):
    """loss(model(lq), gt), as one module so that DDP wraps the whole step."""

    def __init__(self, model: nn.Module, loss: nn.Module) -> None:
        super().__init__()
        self.model, self.loss = model, loss

    def forward(self, lq: Tensor, gt: Tensor) -> Tensor:
        out = self.model(lq)
        if out.shape != gt.shape:
            raise ValueError(f"the model's output {tuple(out.shape)} does not match the ground truth "
                             f"{tuple(gt.shape)}: check --scale, --task and --frames against the model")
        return self.loss(out, gt)


def _check(cfg: TrainConfig) -> None:
    problems = [f"{name} must be positive, got {value}" for name, value in
                (("steps", cfg.steps), ("batch_size", cfg.batch_size), ("patch_size", cfg.patch_size),
                 ("log_every", cfg.log_every), ("save_every", cfg.save_every), ("lr", cfg.lr)) if value <= 0]
    if cfg.loss not in LOSSES:
        problems.append(f"loss must be one of {sorted(LOSSES)}, got {cfg.loss!r}")
    if cfg.optimizer not in OPTIMIZERS:
        problems.append(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {cfg.optimizer!r}")
    if cfg.stop_after is not None and cfg.stop_after <= 0:
        problems.append(f"stop_after must be positive, got {cfg.stop_after}")
    if cfg.distill_weight < 0:
        problems.append(f"distill_weight must not be negative, got {cfg.distill_weight}")
    if (cfg.teacher is None) != (cfg.teacher_checkpoint is None):
        problems.append("distillation needs both --teacher and --teacher-checkpoint")
    if cfg.resume and cfg.overwrite:
        problems.append("--resume continues the run in --out and --overwrite replaces it: choose one")
    if problems:
        raise ValueError("; ".join(problems))


def _check_out(cfg: TrainConfig) -> None:
    """Refuses an --out folder that holds a run unless it is resumed or overwritten on request."""
    found = holds_run(Path(cfg.out))
    if found and not (cfg.resume or cfg.overwrite):
        raise ValueError(f"{cfg.out} holds a training run ({', '.join(found)}): continue it with --resume, replace it "
                         f"with --overwrite, or name a new --out folder")


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _build_model(cfg: TrainConfig, model: nn.Module | None) -> nn.Module:
    """``model``, or ``cfg.model`` built with ``cfg.model_kwargs`` and started from ``cfg.init_checkpoint``: a
    weight file, or the name of a model whose published weights are loaded (strictly: the same architecture)."""
    if model is not None:
        return model
    init = cfg.init_checkpoint
    if init is None or Path(init).is_file() or Path(init).suffix in CHECKPOINT_SUFFIXES or "/" in init:
        return ssmblocks.create_model(cfg.model, checkpoint_path=init, **cfg.model_kwargs)
    if not ssmblocks.is_model(init) or not ssmblocks.get_pretrained_cfg(init).has_weights:
        raise ValueError(f"--init-checkpoint {init} is neither a weight file nor the name of a model with published "
                         f"weights (`ssmblocks list --pretrained` lists them)")
    model = ssmblocks.create_model(cfg.model, **cfg.model_kwargs)
    load_state_dict_strict(model, ssmblocks.create_model(init, pretrained=True).state_dict(), f"the weights of {init}")
    return model


def _trained_cfg(start: ssmblocks.PretrainedCfg, cfg: TrainConfig, given: bool) -> ssmblocks.PretrainedCfg:
    """The cfg of the model a run trains and exports: the architecture's facts (scale, channels, size rules,
    protocol, paper, licence), tag 'trained', a note on how it was made, and neither the published numbers nor the
    weight source of the release it started from."""
    start_from = ("from the model passed to train()" if given else f"from {cfg.init_checkpoint}" if cfg.init_checkpoint
                  else "from random initial weights")
    notes = f"trained with ssmblocks train: task {cfg.task}, data {cfg.data}, {cfg.steps} steps, {start_from}"
    facts = {**start.without_weight_source(), "tag": "trained", "metrics": {}, "notes": notes}
    return ssmblocks.PretrainedCfg.from_dict(facts)


def _objective(cfg: TrainConfig, model: nn.Module) -> nn.Module:
    if cfg.teacher is None:
        return _Supervised(model, LOSSES[cfg.loss]())
    from ssmblocks.distill import Distiller  # written beside this package; imported only when distilling

    teacher = ssmblocks.create_model(cfg.teacher, checkpoint_path=cfg.teacher_checkpoint)
    return Distiller(teacher, model, feature_weight=cfg.distill_weight)


def _logged_step(line: str) -> float:
    """The step of a log.jsonl line; a line cut short by a killed run counts as after every step (dropped)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return float("inf")


class _Log:
    """log.jsonl, the progress bar and TensorBoard, on rank 0 only."""

    def __init__(self, out: Path, cfg: TrainConfig, start_step: int, active: bool) -> None:
        self.active, self.writer, self.bar = active, None, None
        if not active:
            return
        path = out / "log.jsonl"
        kept = [line for line in path.read_text().splitlines() if _logged_step(line) <= start_step] \
            if cfg.resume and path.is_file() else []   # drop lines logged after the state that is resumed
        path.write_text("".join(line + "\n" for line in kept))
        self.file = path.open("a")
        try:
            from torch.utils.tensorboard import SummaryWriter
            self.writer = SummaryWriter(str(out / "tensorboard"))
        except ImportError:
            pass
        if cfg.progress:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=cfg.steps, initial=start_step, desc=f"train {cfg.model}", unit="step")

    def write(self, record: dict[str, Any]) -> None:
        if not self.active:
            return
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()
        if self.writer is not None:
            for key, value in record.items():
                if key != "step":
                    self.writer.add_scalar(key, value, record["step"])
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k != "step"}, refresh=False)

    def advance(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.active:
            self.file.close()
            if self.writer is not None:
                self.writer.close()
            if self.bar is not None:
                self.bar.close()


def train(cfg: TrainConfig, model: nn.Module | None = None) -> nn.Module:
    """Trains ``cfg.model`` (or ``model``, any module mapping (B, C, h, w) inputs to (B, C, H, W) outputs) and
    returns it (the raw weights; the exported ``model.safetensors`` holds the EMA weights when EMA is on).

    Under torchrun each process trains its shard of every batch and DDP averages the gradients; rank 0 logs,
    validates and writes the output folder. See docs/training.md.
    """
    _check(cfg)
    dist = Distributed.from_env()
    try:
        return _Trainer(cfg, model, dist).run()
    finally:
        dist.close()


class _Trainer:
    """One run: set-up (model, objective, optimiser, schedule, EMA, data, resumed state), then ``run``."""

    def __init__(self, cfg: TrainConfig, model: nn.Module | None, dist: Distributed) -> None:
        self.cfg, self.dist, self.out = cfg, dist, Path(cfg.out)
        _check_out(cfg)                  # every rank, before rank 0 writes anything
        dist.barrier()
        self.out.mkdir(parents=True, exist_ok=True)
        if dist.is_main:
            clear_leftovers(self.out)    # what a killed save left behind
        dist.barrier()
        _seed_everything(cfg.seed)   # the same initial weights on every rank (DDP also broadcasts rank 0's)
        self.model = _build_model(cfg, model).to(dist.device).train()
        contract = declared_contract(self.model)     # None for a module from outside the library
        model_cfg = getattr(self.model, "pretrained_cfg", None)
        if model_cfg is not None:      # what the run exports is this run's model, not the release it started from
            self.model.pretrained_cfg = _trained_cfg(model_cfg, cfg, given=model is not None)
        model_scale = contract.scale if contract is not None else None
        if cfg.scale is not None and model_scale is not None and cfg.scale != model_scale:
            raise ValueError(f"{cfg.model} upscales by {model_scale} (its contract), not by --scale {cfg.scale}")
        self.scale = cfg.scale or model_scale or 1    # the output shape is checked every step
        if cfg.bf16 and contract is not None and not contract.supports_bf16:
            raise ValueError(f"{cfg.model} does not support bf16 autocast: train it in float32 (without --bf16)")
        in_chans = contract.in_chans if contract is not None else 3

        self.objective = _objective(cfg, self.model).to(dist.device)
        self.trainable = [p for p in self.objective.parameters() if p.requires_grad]
        self.optimizer = OPTIMIZERS[cfg.optimizer](self.trainable, lr=cfg.lr, betas=cfg.betas,
                                                   weight_decay=cfg.weight_decay)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio))
        self.ema = ModelEma(self.model, cfg.ema_decay) if cfg.ema_decay > 0 else None
        self.step = 0
        if cfg.resume:
            self._restore()
        else:
            torch.manual_seed(cfg.seed + dist.rank)   # per-rank randomness inside the model (dropout, drop-path)
        if dist.is_main:
            write_json(self.out / "train_args.json", _jsonable(cfg))

        degradation = Degradation(cfg.task, self.scale, cfg.jpeg_quality, cfg.noise_sigma)
        dataset = PairedFrames(cfg.data, degradation, lq_dir=cfg.lq_data, patch_size=cfg.patch_size,
                               channels=in_chans, frames=cfg.frames, seed=cfg.seed, cache_dir=cfg.data_cache)
        sampler = ShardedBatchSampler(len(dataset), cfg.batch_size, cfg.steps, seed=cfg.seed, rank=dist.rank,
                                      world_size=dist.world_size, start_step=self.step)
        # its own generator: starting to iterate draws a seed, which must not shift the global stream (dropout)
        self.loader = DataLoader(dataset, batch_sampler=sampler, num_workers=cfg.workers,
                                 pin_memory=dist.device.type == "cuda",
                                 generator=torch.Generator().manual_seed(cfg.seed + dist.rank))
        self.val_set = PairedFrames(cfg.val_data, degradation, lq_dir=cfg.val_lq_data, patch_size=None,
                                    channels=in_chans, frames=cfg.frames, seed=cfg.seed,
                                    cache_dir=cfg.data_cache) if cfg.val_data else None
        cuda = dist.device.type == "cuda"
        self.wrapped = DistributedDataParallel(self.objective, device_ids=[dist.device] if cuda else None) \
            if dist.world_size > 1 else self.objective

    @property
    def exported(self) -> nn.Module:
        """The weights that are exported and validated: the EMA's when EMA is on."""
        return self.ema.module if self.ema is not None else self.model

    def _restore(self) -> None:
        state = load_state(self.out)
        changed = [k for k in _RESUME_KEYS if state["config"].get(k) != _jsonable(self.cfg)[k]]
        if state["world_size"] != self.dist.world_size:
            changed.append(f"world size ({state['world_size']} -> {self.dist.world_size})")
        if changed:
            raise ValueError(f"--resume: the saved run in {self.out} differs in {', '.join(changed)}")
        self.objective.load_state_dict(state["objective"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        set_rng_state(state["rng"][self.dist.rank])
        self.step = state["step"]

    def save(self) -> None:
        """Training state and exported weights, from rank 0 (a collective: every rank calls it)."""
        rngs = self.dist.gather(rng_state())
        if self.dist.is_main:
            save_state(self.out, {
                "step": self.step, "objective": self.objective.state_dict(), "rng": rngs,
                "optimizer": self.optimizer.state_dict(), "schedule": self.schedule.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "world_size": self.dist.world_size, "config": _jsonable(self.cfg)})
            export_weights(self.exported, self.out)
        self.dist.barrier()

    def validate(self, log: _Log) -> None:
        """PSNR/SSIM on the held-out set, on rank 0 (a collective)."""
        if self.val_set is not None and self.dist.is_main:
            metrics = validate(self.exported, self.val_set, self.dist.device, crop_border=self.scale,
                               test_y_channel=self.cfg.val_y_channel, bf16=self.cfg.bf16)
            log.write({"step": self.step, **metrics})
            self.model.train()
        self.dist.barrier()

    def train_step(self, lq: Tensor, gt: Tensor) -> tuple[Tensor, float]:
        """One optimiser step; returns (the detached loss, the learning rate it used). The loss stays on the device
        so that a step does not wait for the device to finish."""
        lq, gt = lq.to(self.dist.device, non_blocking=True), gt.to(self.dist.device, non_blocking=True)
        with torch.autocast(self.dist.device.type, dtype=torch.bfloat16, enabled=self.cfg.bf16):
            loss = self.wrapped(lq, gt)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_grad > 0:
            torch.nn.utils.clip_grad_norm_(self.trainable, self.cfg.clip_grad)
        self.optimizer.step()
        lr = self.optimizer.param_groups[0]["lr"]
        self.schedule.step()
        if self.ema is not None:
            self.ema.update(self.model)
        return loss.detach(), lr

    def run(self) -> nn.Module:
        cfg, dist = self.cfg, self.dist
        log = _Log(self.out, cfg, self.step, dist.is_main)
        last = min(cfg.steps, cfg.stop_after if cfg.stop_after is not None else cfg.steps)
        loss_sum, steps, images, tick = 0.0, 0, 0, time.perf_counter()
        batches = self.loader if self.step < last else []   # resumed at or past --stop-after: nothing to do
        try:
            for lq, gt in batches:
                self.step += 1
                loss, lr = self.train_step(lq, gt)
                loss_sum, steps, images = loss_sum + loss, steps + 1, images + lq.shape[0] * dist.world_size
                log.advance()
                if self.step % cfg.log_every == 0 or self.step == last:
                    log.write({"step": self.step, "loss": dist.mean(float(loss_sum) / steps), "lr": lr,
                               "images_per_s": images / (time.perf_counter() - tick)})
                    loss_sum, steps, images, tick = 0.0, 0, 0, time.perf_counter()
                if self.step % cfg.save_every == 0 or self.step == last:
                    self.save()
                if cfg.val_every and self.step % cfg.val_every == 0 and self.step != cfg.steps:
                    self.validate(log)
                if self.step == last:
                    break
            if self.step == cfg.steps:
                self.validate(log)
        finally:
            log.close()
        return self.model


def _jsonable(cfg: TrainConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))
