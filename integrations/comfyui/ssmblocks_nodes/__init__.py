"""ssmblocks nodes for ComfyUI: drop this folder into ComfyUI's ``custom_nodes/`` (with ``ssmblocks`` installed in
ComfyUI's Python). Importing it registers the library's image families with spandrel, so ComfyUI's own "Load
Upscale Model" node loads MambaIR, MambaIRUNet, MambaCSR and DVMSR checkpoints (and every image family the library
adds); ``nodes`` adds a loader for the library's zoo and a restore node that tiles the way the library does.
"""

import ssmblocks.integrations.spandrel

from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

ssmblocks.integrations.spandrel.register()

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
