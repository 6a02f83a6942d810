"""The model zoo: one module per family; importing this package registers every model and detector."""

from ssmblocks.zoo import dvmsr, mambacsr, mambair, medvsr, vsrm
from ssmblocks.zoo.dvmsr import DVMSR
from ssmblocks.zoo.mambacsr import MambaCSR
from ssmblocks.zoo.mambair import MambaIR, MambaIRUNet
from ssmblocks.zoo.medvsr import MedVSR
from ssmblocks.zoo.vsrm import VSRM

__all__ = ["DVMSR", "VSRM", "MambaCSR", "MambaIR", "MambaIRUNet", "MedVSR", "dvmsr", "mambacsr", "mambair", "medvsr",
           "vsrm"]
