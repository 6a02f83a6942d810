"""ssmblocks: composable state-space (Mamba) building blocks for image and video restoration."""

from ssmblocks import ops, scan_orders

__version__ = "0.1.0"

__all__ = ["__version__", "ops", "scan_orders"]
