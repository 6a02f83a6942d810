"""The model zoo: one module per family; importing this package registers every model and detector."""

from ssmblocks.zoo import mambair
from ssmblocks.zoo.mambair import MambaIR, MambaIRUNet

__all__ = ["MambaIR", "MambaIRUNet", "mambair"]
