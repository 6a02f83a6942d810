"""The model zoo: one module per family; importing this package registers every model and detector."""

from ssmblocks.zoo import mambair, medvsr
from ssmblocks.zoo.mambair import MambaIR, MambaIRUNet
from ssmblocks.zoo.medvsr import MedVSR

__all__ = ["MambaIR", "MambaIRUNet", "MedVSR", "mambair", "medvsr"]
