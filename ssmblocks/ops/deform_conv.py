"""Modulated deformable convolution (DCNv2) with the semantics of ``torchvision.ops.deform_conv2d``.

    out = deform_conv2d(x, offset, weight, bias=None, stride=1, padding=0, dilation=1, mask=None)

Layouts: x (B, C_in, H, W); weight (C_out, C_in / groups, kh, kw); bias (C_out,); offset (B, 2 * G * kh * kw, H_out,
W_out) and mask (B, G * kh * kw, H_out, W_out), G = offset groups (``deformable_groups``), which split C_in into G
consecutive parts. For offset group g and kernel tap k = i * kw + j, ``offset[:, 2 * (g * kh * kw + k)]`` is the y
(row) displacement and the next channel the x displacement; tap k of output pixel (p, q) samples x bilinearly at
``(p * stride - pad + i * dilation + dy, q * stride - pad + j * dilation + dx)`` with zeros outside, times the mask.
Facts from torchvision ``torchvision/ops/deform_conv.py`` and its CPU kernel (pytorch/vision), which BasicSR's
``ModulatedDeformConvPack`` and MedVSR (CUHK-AIM-Group/MedVSR 3421505, ``archs/medvsr_arch.py``) call.

Computed as an im2col with bilinear weights (the mask folded in) followed by one grouped matrix product (torch's).
No torchvision needed. Backends (``ssmblocks.ops.get_backend("deform_conv", ...)``):

* ``native``: the im2col runs in the C++ kernel (``_native/deform_conv.cpp``, CPU float32/float64, threads over
  batch x output rows), registered as the torch custom op ``torch.ops.ssmblocks.deform_im2col`` with a fake
  implementation and the kernel's own backward (``ssmblocks::deform_im2col_backward``: the column gradient scattered
  back onto x, and the offset and mask gradients), so training uses it too and torch.compile and torch.export see
  one op. Gradients of weight and bias come from autograd through the matrix product. The backward op is not
  differentiable itself (no double backward).
* ``torch``: the samples of all taps gathered at once in pure PyTorch, differentiable by autograd and traceable as
  ordinary torch code; used on GPUs, for half precision, when x, offset and mask differ in dtype, without a
  compiler, and for ONNX export
  (``ssmblocks.export.portable_backends``). Force it with ``use_backend("deform_conv", "torch")``, ``set_backend``
  or ``SSMBLOCKS_DEFORM_CONV_BACKEND=torch``.

``deform_conv2d_ref`` loops over output pixels and taps, the test oracle.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ssmblocks.ops import _native
from ssmblocks.ops._backends import dispatch, native_needs, native_on_cpu, register_backend
from ssmblocks.ops.flow_warp import bilinear_gather

__all__ = ["deform_conv2d", "deform_conv2d_ref"]

Pair = int | tuple[int, int]


def _pair(v: Pair, name: str) -> tuple[int, int]:
    pair = (v, v) if isinstance(v, int) else tuple(v)
    if len(pair) != 2 or not all(isinstance(p, int) for p in pair):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return pair


def _geometry(x, offset, weight, bias, stride, padding, dilation, mask):
    """Validates the arguments; returns (stride, padding, dilation, groups, offset_groups, (H_out, W_out))."""
    for name, t, rank in (("x", x, 4), ("offset", offset, 4), ("weight", weight, 4)):
        if not isinstance(t, Tensor) or t.dim() != rank or not t.is_floating_point():
            raise ValueError(f"{name} must be a float {rank}-D tensor, got {getattr(t, 'shape', type(t).__name__)}")
    stride, padding, dilation = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    batch, channels, height, width = x.shape
    out_channels, group_channels, kh, kw = weight.shape
    if group_channels == 0 or channels % group_channels:
        raise ValueError(f"weight {tuple(weight.shape)} needs C_in divisible by {group_channels}, x has {channels}")
    groups = channels // group_channels
    if out_channels % groups:
        raise ValueError(f"C_out = {out_channels} is not divisible by groups = {groups}")
    out_h = (height + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (width + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    taps = kh * kw
    if offset.shape[1] == 0 or offset.shape[1] % (2 * taps) or channels % (offset.shape[1] // (2 * taps)):
        raise ValueError(f"offset must have 2 * G * {kh} * {kw} channels with G dividing C_in = {channels}, got "
                         f"{offset.shape[1]}")
    offset_groups = offset.shape[1] // (2 * taps)
    if tuple(offset.shape) != (batch, 2 * offset_groups * taps, out_h, out_w):
        raise ValueError(f"offset must have shape (B, 2*G*kh*kw, H_out, W_out) = "
                         f"({batch}, {2 * offset_groups * taps}, {out_h}, {out_w}), got {tuple(offset.shape)}")
    if mask is not None and tuple(mask.shape) != (batch, offset_groups * taps, out_h, out_w):
        raise ValueError(f"mask must have shape (B, G*kh*kw, H_out, W_out) = "
                         f"({batch}, {offset_groups * taps}, {out_h}, {out_w}), got {tuple(mask.shape)}")
    if bias is not None and tuple(bias.shape) != (out_channels,):
        raise ValueError(f"bias must have shape ({out_channels},), got {tuple(bias.shape)}")
    return stride, padding, dilation, groups, offset_groups, (out_h, out_w)


def _check_im2col(x: Tensor, offset: Tensor, mask: Tensor | None, kernel, stride, padding, dilation) -> None:
    """Guards the native kernel (which trusts its shapes) when the custom op is called directly."""
    geometry = (kernel, stride, padding, dilation)
    ok = x.dim() == 4 and offset.dim() == 4 and all(len(v) == 2 for v in geometry) and x.dtype in _native.GATHER_DTYPES
    if ok:
        taps = kernel[0] * kernel[1]
        groups = offset.shape[1] // (2 * taps)
        out_size = tuple((size + 2 * p - d * (k - 1) - 1) // s + 1
                         for size, k, s, p, d in zip(x.shape[-2:], *geometry, strict=True))
        ok = (groups > 0 and x.shape[1] % groups == 0 and offset.dtype == x.dtype
              and tuple(offset.shape) == (x.shape[0], 2 * groups * taps, *out_size))
        if mask is not None:
            ok = ok and mask.dtype == x.dtype and tuple(mask.shape) == (x.shape[0], groups * taps, *out_size)
    if not ok:
        raise ValueError(f"deform_im2col got inconsistent inputs: x {tuple(x.shape)} {x.dtype}, offset "
                         f"{tuple(offset.shape)} {offset.dtype}, mask {None if mask is None else tuple(mask.shape)}, "
                         f"kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation}")


@torch.library.custom_op("ssmblocks::deform_im2col", mutates_args=())
def _native_im2col_op(x: Tensor, offset: Tensor, mask: Tensor | None, kernel: list[int], stride: list[int],
                      padding: list[int], dilation: list[int]) -> Tensor:
    """The native bilinear im2col -> columns (B, C_in * kh * kw, H_out * W_out); inputs of one dtype."""
    _check_im2col(x, offset, mask, kernel, stride, padding, dilation)
    return _native.deform_im2col(x.contiguous(), offset.contiguous(), None if mask is None else mask.contiguous(),
                                 kernel, stride, padding, dilation)


@_native_im2col_op.register_fake
def _(x, offset, mask, kernel, stride, padding, dilation):
    return x.new_empty(x.shape[0], x.shape[1] * kernel[0] * kernel[1], offset.shape[-2] * offset.shape[-1])


@torch.library.custom_op("ssmblocks::deform_im2col_backward", mutates_args=())
def _native_im2col_backward_op(grad_columns: Tensor, x: Tensor, offset: Tensor, mask: Tensor | None,
                               kernel: list[int], stride: list[int], padding: list[int],
                               dilation: list[int]) -> list[Tensor]:
    """Gradients [x, offset, mask] of the im2col; an empty tensor stands for the mask's when there is none."""
    _check_im2col(x, offset, mask, kernel, stride, padding, dilation)
    if tuple(grad_columns.shape) != (x.shape[0], x.shape[1] * kernel[0] * kernel[1],
                                     offset.shape[-2] * offset.shape[-1]) or grad_columns.dtype != x.dtype:
        raise ValueError(f"deform_im2col_backward got grad_columns {tuple(grad_columns.shape)} for x {tuple(x.shape)}")
    grads = _native.deform_im2col_backward(
        grad_columns.contiguous(), x.contiguous(), offset.contiguous(), None if mask is None else mask.contiguous(),
        kernel, stride, padding, dilation)
    return [x.new_empty(0) if g is None else g for g in grads]


@_native_im2col_backward_op.register_fake
def _(grad_columns, x, offset, mask, kernel, stride, padding, dilation):
    return [torch.empty_like(x), torch.empty_like(offset), x.new_empty(0) if mask is None else torch.empty_like(mask)]


def _setup_context(ctx, inputs, output):
    x, offset, mask, *ctx.geometry = inputs
    ctx.save_for_backward(x, offset, mask)


def _backward(ctx, grad_columns):
    x, offset, mask = ctx.saved_tensors
    grad_x, grad_offset, grad_mask = _native_im2col_backward_op(grad_columns, x, offset, mask, *ctx.geometry)
    return grad_x, grad_offset, None if mask is None else grad_mask, None, None, None, None


torch.library.register_autograd("ssmblocks::deform_im2col", _backward, setup_context=_setup_context)


def _torch_columns(x, offset, mask, kernel, stride, padding, dilation, offset_groups, out_size) -> Tensor:
    """The pure-PyTorch im2col -> (B, C_in * kh * kw, H_out * W_out), same layout as the native op."""
    batch, channels, height, width = x.shape
    (kh, kw), (out_h, out_w) = kernel, out_size
    taps = kh * kw
    dtype, device = torch.promote_types(offset.dtype, torch.float32), offset.device   # positions: >= float32
    # base sampling positions per tap: (taps, H_out, W_out)
    rows = torch.arange(out_h, dtype=dtype, device=device) * stride[0] - padding[0]
    cols = torch.arange(out_w, dtype=dtype, device=device) * stride[1] - padding[1]
    tap_rows = torch.arange(kh, dtype=dtype, device=device).repeat_interleave(kw) * dilation[0]
    tap_cols = torch.arange(kw, dtype=dtype, device=device).repeat(kh) * dilation[1]
    base_y = (tap_rows[:, None, None] + rows[None, :, None]).expand(taps, out_h, out_w)
    base_x = (tap_cols[:, None, None] + cols[None, None, :]).expand(taps, out_h, out_w)
    offset = offset.to(dtype).view(batch * offset_groups, taps, 2, out_h, out_w)
    py = base_y + offset[:, :, 0]                                             # (B*G, taps, H_out, W_out)
    px = base_x + offset[:, :, 1]
    parts = x.reshape(batch * offset_groups, channels // offset_groups, height, width)
    scale = None if mask is None else mask.reshape(batch * offset_groups, taps, out_h, out_w)
    columns = bilinear_gather(parts, py, px, scale).to(x.dtype)               # (B*G, C/G, taps, H_out, W_out)
    return columns.reshape(batch, channels * taps, out_h * out_w)


def _native_columns(x, offset, mask, kernel, stride, padding, dilation, offset_groups, out_size) -> Tensor:
    """The native im2col op with the backends' signature (``offset_groups`` and ``out_size`` follow from shapes)."""
    return _native_im2col_op(x, offset, mask, list(kernel), list(stride), list(padding), list(dilation))


# Backends in automatic-priority order; each runs (x, offset, mask, kernel, stride, padding, dilation,
# offset_groups, out_size), validated, and returns the columns (B, C_in * kh * kw, H_out * W_out).
register_backend("deform_conv", "native", _native_columns, available=native_on_cpu(tuple(_native.GATHER_DTYPES)),
                 needs=native_needs("CPU float32/float64 tensors"))
register_backend("deform_conv", "torch", _torch_columns)


def _one_dtype(x: Tensor, offset: Tensor, mask: Tensor | None) -> dict[str, str]:
    """The per-call limit of the native backend: x, offset and mask in one dtype."""
    if offset.dtype == x.dtype and (mask is None or mask.dtype == x.dtype):
        return {}
    return {"native": "takes x, offset and mask of one dtype"}


def deform_conv2d(x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Pair = 1,
                  padding: Pair = 0, dilation: Pair = 1, mask: Tensor | None = None) -> Tensor:
    """Modulated deformable convolution -> (B, C_out, H_out, W_out). See the module docstring for layouts and
    backends (the native one runs for CPU float32/float64 inputs that share one dtype)."""
    stride, padding, dilation, groups, offset_groups, out_size = _geometry(
        x, offset, weight, bias, stride, padding, dilation, mask)
    batch = x.shape[0]
    out_channels, group_channels, kh, kw = weight.shape
    backend = dispatch("deform_conv", x.device, x.dtype, unsupported=_one_dtype(x, offset, mask))
    columns = backend.run(x, offset, mask, (kh, kw), stride, padding, dilation, offset_groups, out_size)
    columns = columns.view(batch, groups, group_channels * kh * kw, out_size[0] * out_size[1])
    kernel = weight.reshape(groups, out_channels // groups, group_channels * kh * kw)
    out = torch.matmul(kernel, columns).reshape(batch, out_channels, *out_size)
    if bias is not None:
        out = out + bias.view(1, out_channels, 1, 1)
    return out


def _sample(image: Tensor, y: Tensor, x: Tensor) -> Tensor:
    """Bilinear sample of ``image`` (C, H, W) at one point (y, x), zero outside, written out per neighbour."""
    height, width = image.shape[-2:]
    y0, x0 = int(torch.floor(y)), int(torch.floor(x))
    total = image.new_zeros(image.shape[0])
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            if 0 <= yy < height and 0 <= xx < width:
                total = total + image[:, yy, xx] * (1 - (y - yy).abs()) * (1 - (x - xx).abs())
    return total


def deform_conv2d_ref(x: Tensor, offset: Tensor, weight: Tensor, bias: Tensor | None = None, stride: Pair = 1,
                      padding: Pair = 0, dilation: Pair = 1, mask: Tensor | None = None) -> Tensor:
    """Reference of ``deform_conv2d``: a loop over batch, output pixels and taps (slow; small inputs only)."""
    stride, padding, dilation, groups, offset_groups, (out_h, out_w) = _geometry(
        x, offset, weight, bias, stride, padding, dilation, mask)
    batch, channels = x.shape[:2]
    out_channels, group_channels, kh, kw = weight.shape
    per_offset_group = channels // offset_groups
    per_out_group = out_channels // groups
    out = []
    for b in range(batch):
        pixels = []
        for p in range(out_h):
            for q in range(out_w):
                samples = []                                                  # (C_in, taps) for this pixel
                for g in range(offset_groups):
                    part = x[b, g * per_offset_group:(g + 1) * per_offset_group]
                    taps = []
                    for i in range(kh):
                        for j in range(kw):
                            k = g * kh * kw + i * kw + j
                            y = p * stride[0] - padding[0] + i * dilation[0] + offset[b, 2 * k, p, q]
                            xx = q * stride[1] - padding[1] + j * dilation[1] + offset[b, 2 * k + 1, p, q]
                            value = _sample(part, y, xx)
                            taps.append(value * mask[b, k, p, q] if mask is not None else value)
                    samples.append(torch.stack(taps, dim=1))
                samples = torch.cat(samples, dim=0)
                values = [(weight[o].flatten() * samples[(o // per_out_group) * group_channels:
                                                         (o // per_out_group + 1) * group_channels].flatten()).sum()
                          for o in range(out_channels)]
                pixels.append(torch.stack(values))
        out.append(torch.stack(pixels, dim=1).view(out_channels, out_h, out_w))
    out = torch.stack(out)
    return out if bias is None else out + bias.view(1, out_channels, 1, 1)
