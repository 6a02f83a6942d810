"""The skeleton of the Restormer-style 4-level U-Nets of the zoo (MambaIRUNet, and their successors): one class the
families fill with their blocks.

Input (B, in_chans, H, W) float in [0, 1], reflect-padded bottom/right to multiples of 8 (three 2x downsamplings) ->
``patch_embed.proj`` 3x3 (in -> dim) -> ``encoder_level1`` (dim) -> ``down1_2`` -> ``encoder_level2`` (2 dim) ->
``down2_3`` -> ``encoder_level3`` (4 dim) -> ``down3_4`` -> ``latent`` (8 dim) -> ``up4_3``, cat enc3,
``reduce_chan_level3`` 1x1 -> ``decoder_level3`` (4 dim) -> ``up3_2``, cat enc2, ``reduce_chan_level2`` 1x1 ->
``decoder_level2`` (2 dim) -> ``up2_1``, cat enc1 (no reduce conv: 2 dim) -> ``decoder_level1`` -> ``refinement`` ->
``output`` 3x3 (2 dim -> out) + the padded input -> cropped to (H, W). Down = 3x3 conv n -> n/2 + PixelUnshuffle(2),
up = 3x3 conv n -> 2n + PixelShuffle(2) (keys ``body.0``), no biases unless ``bias``. Key names are those of
Restormer-derived official code (csguoh/MambaIR ``realDenoising/basicsr/models/archs/mambairunet_arch.py``).

A family's ``__init__`` calls ``build_unet(..., level=...)`` with a function that builds one level's blocks:
``level(name, width, depth)`` -> a module on (B, H, W, C) tokens (``level_layout='channels_last'``) or (B, C, H, W)
maps (``'channels_first'``), its keys ``<name>.{i}.…``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssmblocks._contract import ModelContract
from ssmblocks._inputs import check_image
from ssmblocks.blocks import BLOCK_LAYOUTS
from ssmblocks.blocks._keys import keyed

__all__ = ["LEVELS", "Resample", "RestormerUNet"]

# The level names in the order the official constructors build them (and the widths as multiples of dim).
LEVELS = (("encoder_level1", 1), ("encoder_level2", 2), ("encoder_level3", 4), ("latent", 8), ("decoder_level3", 4),
          ("decoder_level2", 2), ("decoder_level1", 2), ("refinement", 2))
PAD_MULTIPLE = 8


class Resample(nn.Module):
    """(B, n, H, W) -> Conv3x3 then PixelUnshuffle(2) (``down``: (B, 2n, H/2, W/2)) or PixelShuffle(2)
    ((B, n/2, 2H, 2W)). Key ``body.0``."""

    def __init__(self, channels: int, *, down: bool, bias: bool = False, device: torch.device | str | None = None,
                 dtype: torch.dtype | None = None) -> None:
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        if down:
            self.body = nn.Sequential(nn.Conv2d(channels, channels // 2, 3, padding=1, bias=bias, **dd),
                                      nn.PixelUnshuffle(2))
        else:
            self.body = nn.Sequential(nn.Conv2d(channels, channels * 2, 3, padding=1, bias=bias, **dd),
                                      nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class RestormerUNet(nn.Module):
    """Base class of the Restormer-style U-Nets (see the module docstring). Instance attributes set by
    ``build_unet``: ``in_chans``, ``out_chans``, ``level_layout``."""

    family = ""
    supports_fp16 = False
    supports_bf16 = True

    def build_unet(self, *, in_chans: int, out_chans: int, dim: int, num_blocks: Sequence[int],
                   num_refinement_blocks: int, level: Callable[[str, int, int], nn.Module], bias: bool = False,
                   level_layout: str = "channels_last", device: torch.device | str | None = None,
                   dtype: torch.dtype | None = None) -> None:
        """Builds every layer; ``level(name, width, depth)`` builds the blocks of one level."""
        if level_layout not in BLOCK_LAYOUTS:
            raise ValueError(f"level_layout must be one of {BLOCK_LAYOUTS}, got {level_layout!r}")
        if len(num_blocks) != 4:
            raise ValueError(f"num_blocks gives the blocks of the 4 levels, got {list(num_blocks)}")
        dd = {"device": device, "dtype": dtype}
        self.in_chans, self.out_chans, self.level_layout = in_chans, out_chans, level_layout
        depths = dict(zip((name for name, _ in LEVELS), (*num_blocks, *num_blocks[2::-1], num_refinement_blocks),
                          strict=True))
        widths = {name: dim * factor for name, factor in LEVELS}

        def add_level(name: str) -> None:
            self.add_module(name, level(name, widths[name], depths[name]))

        self.patch_embed = keyed("proj", nn.Conv2d(in_chans, dim, 3, padding=1, bias=bias, **dd))
        add_level("encoder_level1")
        self.down1_2 = Resample(dim, down=True, **dd)
        add_level("encoder_level2")
        self.down2_3 = Resample(dim * 2, down=True, **dd)
        add_level("encoder_level3")
        self.down3_4 = Resample(dim * 4, down=True, **dd)
        add_level("latent")
        self.up4_3 = Resample(dim * 8, down=False, **dd)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, 1, bias=bias, **dd)
        add_level("decoder_level3")
        self.up3_2 = Resample(dim * 4, down=False, **dd)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, 1, bias=bias, **dd)
        add_level("decoder_level2")
        self.up2_1 = Resample(dim * 2, down=False, **dd)
        add_level("decoder_level1")
        add_level("refinement")
        self.output = nn.Conv2d(dim * 2, out_chans, 3, padding=1, bias=bias, **dd)

    @property
    def contract(self) -> ModelContract:
        """Same-size restoration; at least 8x8 (the model reflect-pads to multiples of 8 itself)."""
        return ModelContract(scale=1, in_chans=self.in_chans, out_chans=self.out_chans, min_size=PAD_MULTIPLE,
                             multiple_of=PAD_MULTIPLE, supports_fp16=self.supports_fp16,
                             supports_bf16=self.supports_bf16)

    def run_level(self, name: str, x: Tensor) -> Tensor:
        """The blocks of level ``name`` on a (B, C, H, W) map."""
        blocks = getattr(self, name)
        if self.level_layout == "channels_last":
            return blocks(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return blocks(x)

    def forward(self, image: Tensor) -> Tensor:
        check_image(image, self.in_chans, type(self).__name__)
        height, width = image.shape[-2:]
        if height < PAD_MULTIPLE or width < PAD_MULTIPLE:
            raise ValueError(f"{type(self).__name__} needs images of at least {PAD_MULTIPLE}x{PAD_MULTIPLE} (three 2x "
                             f"downsamplings), got {height}x{width}")
        pad = (0, -width % PAD_MULTIPLE, 0, -height % PAD_MULTIPLE)
        x = F.pad(image, pad, mode="reflect") if any(pad) else image
        enc1 = self.run_level("encoder_level1", self.patch_embed["proj"](x))
        enc2 = self.run_level("encoder_level2", self.down1_2(enc1))
        enc3 = self.run_level("encoder_level3", self.down2_3(enc2))
        latent = self.run_level("latent", self.down3_4(enc3))
        dec3 = self.run_level("decoder_level3", self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.run_level("decoder_level2", self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.run_level("decoder_level1", torch.cat([self.up2_1(dec2), enc1], 1))
        out = self.output(self.run_level("refinement", dec1)) + x
        return out[..., :height, :width]
