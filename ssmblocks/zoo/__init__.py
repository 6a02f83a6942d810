"""The model zoo: one module per family; importing this package registers every model and detector."""

from ssmblocks.zoo import dvmsr, mambacsr, mambair
from ssmblocks.zoo.dvmsr import DVMSR
from ssmblocks.zoo.mambacsr import MambaCSR
from ssmblocks.zoo.mambair import MambaIR, MambaIRUNet

__all__ = ["DVMSR", "MambaCSR", "MambaIR", "MambaIRUNet", "dvmsr", "mambacsr", "mambair"]
