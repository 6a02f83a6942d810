"""The official split-and-paste test procedure of the MambaIR lineage, written out directly from the reference
files: the independent implementation the restore protocols ('mambair', 'mambacsr', 'mambairv2', 'mair_plus') are
compared with."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def official_split_test(model, lq, scale, base, shave_div, mirror=None):
    """The official MambaIRModel.test / MambaCSRModel.test / MambaIRv2Model.test procedure (shared/reference
    mambair.md, mambacsr.md, mambairv2.md), written out directly: h // base + 1 tiles per axis, bottom/right reflect
    padding to a multiple of the tile count, each tile extended by split // shave_div, its own part pasted; with
    ``mirror`` (MambaCSR) each tile mirror-padded to a multiple of ``mirror`` and cropped back. (1, C, H, W) ->
    (1, C, sH, sW)."""
    _, c, h, w = lq.shape
    n_h, n_w = h // base + 1, w // base + 1
    pad_h = n_h - h % n_h if h % n_h else 0
    pad_w = n_w - w % n_w if w % n_w else 0
    img = F.pad(lq, (0, pad_w, 0, pad_h), "reflect")
    H, W = img.shape[-2:]
    sh, sw = H // n_h, W // n_w
    shave_h, shave_w = sh // shave_div, sw // shave_div
    out = torch.zeros(1, c, H * scale, W * scale, dtype=lq.dtype)
    for i in range(n_h):
        for j in range(n_w):
            top0 = i * sh - (shave_h if i > 0 else 0)
            top1 = (i + 1) * sh + (shave_h if i < n_h - 1 else 0)
            left0 = j * sw - (shave_w if j > 0 else 0)
            left1 = (j + 1) * sw + (shave_w if j < n_w - 1 else 0)
            chop = img[..., top0:top1, left0:left1]
            if mirror is None:
                res = model(chop)
            else:
                ho, wo = chop.shape[-2:]
                hp = (ho // mirror + 1) * mirror - ho
                wp = (wo // mirror + 1) * mirror - wo
                chop = torch.cat([chop, torch.flip(chop, [2])], 2)[:, :, :ho + hp, :]
                chop = torch.cat([chop, torch.flip(chop, [3])], 3)[:, :, :, :wo + wp]
                res = model(chop)[..., :ho * scale, :wo * scale]
            r0 = 0 if i == 0 else shave_h * scale
            c0 = 0 if j == 0 else shave_w * scale
            out[..., i * sh * scale:(i + 1) * sh * scale, j * sw * scale:(j + 1) * sw * scale] = \
                res[..., r0:r0 + sh * scale, c0:c0 + sw * scale]
    return out[..., :h * scale, :w * scale]
