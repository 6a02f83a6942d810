"""The model zoo: one module per family; importing this package registers every model and detector."""

from ssmblocks.zoo import mambacsr, mambair
from ssmblocks.zoo.mambacsr import MambaCSR
from ssmblocks.zoo.mambair import MambaIR, MambaIRUNet

__all__ = ["MambaCSR", "MambaIR", "MambaIRUNet", "mambacsr", "mambair"]
