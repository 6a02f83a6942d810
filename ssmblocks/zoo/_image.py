"""The skeleton of the SwinIR-lineage image models (MambaIR, MambaCSR, DVMSR, and their successors): one class the
families fill with their body and their quirks.

Input (B, in_chans, H, W) float in [0, 1] ->
  (optional ``pad_input``) -> (x - mean) * img_range -> ``conv_first`` 3x3 = f ->
  ``forward_features(f)``: ``patch_embed.norm`` LayerNorm -> residual groups ``layers`` -> ``norm`` LayerNorm ->
  ``conv_after_body`` 3x3 + f -> head ->  / img_range + mean -> (crop back) -> (B, out_chans, sH, sW), not clamped.
Heads (``upsampler``), with the official key names of SwinIR / MambaIR (csguoh/MambaIR
``basicsr/archs/mambair_arch.py`` at 33d7b34):
  'pixelshuffle': ``conv_before_upsample`` (3x3 to num_feat + LeakyReLU 0.01) -> ``upsample`` ([conv + PixelShuffle(2)]
  per factor 2, or conv + PixelShuffle(3)) -> ``conv_last`` 3x3 (classic SR);
  'pixelshuffledirect': ``upsample`` = one 3x3 conv to out * s^2 + PixelShuffle(s) (lightweight SR);
  '': the image-level residual x + ``conv_last``(features) on the mean-shifted input (denoising, JPEG CAR).
The mean is the DIV2K RGB mean kept as a float32 constant (not a buffer: models are built on the meta device and take
every tensor from the checkpoint) for 3 channels, 0 otherwise.

A family's ``__init__`` calls ``build_stem(...)``, builds ``self.layers`` (and whatever else its body needs), then
``build_head(...)``; it overrides ``forward_features`` when its body is more than the groups in sequence, and
``pad_input`` when it pads (the output is cropped back to (sH, sW) by ``forward``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ssmblocks._contract import ModelContract
from ssmblocks._inputs import check_image
from ssmblocks.blocks._keys import keyed
from ssmblocks.necks import PixelShuffleDirect, PixelShuffleUpsample
from ssmblocks.zoo._common import RGB_MEAN, mean_of

__all__ = ["UPSAMPLERS", "SwinIRSkeleton"]

UPSAMPLERS = ("pixelshuffle", "pixelshuffledirect", "")


class SwinIRSkeleton(nn.Module):
    """Base class of the SwinIR-lineage image restoration models (see the module docstring for the computation).

    Class attributes a family may override: ``supports_fp16``, ``supports_bf16``. Instance attributes set by
    ``build_stem`` / ``build_head``: ``in_chans``, ``out_chans``, ``upscale``, ``upsampler``, ``img_range``,
    ``mean_values``, ``min_size``, ``multiple_of``, ``num_features``.
    """

    family = ""
    supports_fp16 = False
    supports_bf16 = True

    def build_stem(self, *, in_chans: int, embed_dim: int, img_range: float = 1.0,
                   mean: Sequence[float] | None = None, patch_norm: bool = True, bias: bool = True,
                   device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        """``conv_first`` (in_chans -> embed_dim) and the ``patch_embed.norm`` LayerNorm. ``mean``: the input mean
        (default: the RGB mean for 3 channels, 0 otherwise)."""
        self.in_chans, self.img_range, self.num_features = in_chans, img_range, embed_dim
        self.mean_values = tuple(mean) if mean is not None else (RGB_MEAN if in_chans == 3 else (0.0,) * in_chans)
        self.min_size, self.multiple_of = 1, 1
        self.conv_first = nn.Conv2d(in_chans, embed_dim, 3, padding=1, bias=bias, device=device, dtype=dtype)
        self.patch_embed = keyed("norm", nn.LayerNorm(embed_dim, device=device, dtype=dtype)) if patch_norm else None

    def build_head(self, *, upscale: int, upsampler: str, out_chans: int | None = None, num_feat: int = 64,
                   norm_key: str = "norm", norm: nn.Module | None = None, bias: bool = True,
                   device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        """The body's final norm (under ``norm_key``; ``norm`` replaces the default LayerNorm), ``conv_after_body``
        and the head of ``upsampler`` (one of ``UPSAMPLERS``) for ``upscale`` (1 for '')."""
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        if (upscale == 1) != (upsampler == ""):
            raise ValueError(f"upsampler {upsampler!r} does not fit upscale {upscale}: '' (an image-level residual) "
                             f"is for upscale 1, 'pixelshuffle' / 'pixelshuffledirect' for upscale >= 2")
        dd = {"device": device, "dtype": dtype}
        dim = self.num_features
        self.upscale, self.upsampler = upscale, upsampler
        self.out_chans = self.in_chans if out_chans is None else out_chans
        self.norm_key = norm_key
        self.add_module(norm_key, norm if norm is not None else nn.LayerNorm(dim, **dd))
        self.conv_after_body = nn.Conv2d(dim, dim, 3, padding=1, bias=bias, **dd)
        if upsampler == "pixelshuffle":
            self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, num_feat, 3, padding=1, **dd), nn.LeakyReLU())
            self.upsample = PixelShuffleUpsample(upscale, num_feat, **dd)
            self.conv_last = nn.Conv2d(num_feat, self.out_chans, 3, padding=1, bias=bias, **dd)
        elif upsampler == "pixelshuffledirect":
            self.upsample = PixelShuffleDirect(upscale, dim, self.out_chans, **dd)
        else:
            if self.out_chans != self.in_chans:
                raise ValueError(f"an image-level residual (upsampler '') needs out_chans == in_chans, got "
                                 f"{self.in_chans} -> {self.out_chans}")
            self.conv_last = nn.Conv2d(dim, self.out_chans, 3, padding=1, bias=bias, **dd)

    @property
    def contract(self) -> ModelContract:
        """The model's input/output contract, from its hyperparameters."""
        return ModelContract(scale=self.upscale, in_chans=self.in_chans, out_chans=self.out_chans,
                             min_size=self.min_size, multiple_of=self.multiple_of,
                             supports_fp16=self.supports_fp16, supports_bf16=self.supports_bf16)

    # ---- the computation -------------------------------------------------------------------------------------------
    def embed(self, x: Tensor) -> Tensor:
        """The ``patch_embed.norm`` LayerNorm over the channels of a (B, C, H, W) map (identity without one)."""
        return x if self.patch_embed is None else self.patch_embed["norm"](x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def body_norm(self, x: Tensor) -> Tensor:
        """The final LayerNorm over the channels of a (B, C, H, W) map."""
        return getattr(self, self.norm_key)(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W), C = embed_dim: norm, the residual groups in sequence, norm."""
        x = self.embed(x)
        for layer in self.layers:
            x = layer(x)
        return self.body_norm(x)

    def pad_input(self, x: Tensor) -> Tensor:
        """Pads the (B, C, H, W) input before the mean shift (none by default; ``forward`` crops the output)."""
        return x

    def forward_head(self, res: Tensor, x: Tensor) -> Tensor:
        """The head on ``res`` = conv_after_body(features) + conv_first output; ``x`` is the mean-shifted input."""
        if self.upsampler == "pixelshuffle":
            return self.conv_last(self.upsample(self.conv_before_upsample(res)))
        if self.upsampler == "pixelshuffledirect":
            return self.upsample(res)
        return x + self.conv_last(res)

    def forward(self, x: Tensor) -> Tensor:
        check_image(x, self.in_chans, type(self).__name__)
        height, width = x.shape[-2:]
        x = self.pad_input(x)
        mean = mean_of(x, self.mean_values)     # the official float32 mean, cast to the input's dtype
        x = (x - mean) * self.img_range
        first = self.conv_first(x)
        res = self.conv_after_body(self.forward_features(first)) + first
        out = self.forward_head(res, x) / self.img_range + mean
        return out[..., : height * self.upscale, : width * self.upscale]     # undoes pad_input (a no-op slice else)
