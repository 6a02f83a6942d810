"""Training: losses, EMA, resumable checkpoints and torchrun DDP from one command (docs/training.md).

    from ssmblocks.train import TrainConfig, train
    model = train(TrainConfig(model="test_mambair_sr", data="hq_images/", out="runs/tiny", steps=100))

Command line: ``ssmblocks train --help`` (``python -m ssmblocks.train`` and ``main`` are the same command); its flags
are generated from ``TrainConfig``'s fields.
"""

from ssmblocks.train.cli import build_parser, main
from ssmblocks.train.data import Degradation, PairedFrames, ShardedBatchSampler
from ssmblocks.train.ema import ModelEma
from ssmblocks.train.loop import TrainConfig, train, warmup_cosine

__all__ = ["Degradation", "ModelEma", "PairedFrames", "ShardedBatchSampler", "TrainConfig", "build_parser", "main",
           "train", "warmup_cosine"]
