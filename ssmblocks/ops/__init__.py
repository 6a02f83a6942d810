"""Numerical ops without learnable state: the selective scan (Mamba-1), the chunked SSD scan (Mamba-2) and the
path gather that scan orders run.

Each op has one entry point (the scans with mamba_ssm's signatures) and several backends, registered in one place
(``ssmblocks.ops._backends``) and chosen per call (see ``get_backend``); ``use_backend`` (per thread) /
``set_backend`` (process-wide) / environment variables override the choice.
"""

from ssmblocks.ops._backends import available_backends, get_backend, set_backend, use_backend
from ssmblocks.ops.deform_conv import deform_conv2d, deform_conv2d_ref
from ssmblocks.ops.flow_warp import compose_flows, flow_warp, flow_warp_ref
from ssmblocks.ops.path_gather import path_gather, path_gather_ref
from ssmblocks.ops.selective_scan import selective_scan_fn, selective_scan_ref
from ssmblocks.ops.ssd_scan import mamba_chunk_scan_combined, ssd_scan, ssd_scan_ref

selective_scan = selective_scan_fn

__all__ = [
    "available_backends",
    "compose_flows",
    "deform_conv2d",
    "deform_conv2d_ref",
    "flow_warp",
    "flow_warp_ref",
    "get_backend",
    "mamba_chunk_scan_combined",
    "path_gather",
    "path_gather_ref",
    "selective_scan",
    "selective_scan_fn",
    "selective_scan_ref",
    "set_backend",
    "ssd_scan",
    "ssd_scan_ref",
    "use_backend",
]
