"""The model zoo: one module per family; importing this package registers every model and detector.

The skeletons the families share are public, for new families and custom networks: ``SwinIRSkeleton`` (the
SwinIR-lineage image models), ``RestormerUNet`` (4-level U-Nets) and ``SecondOrderVSR`` (recurrent video SR).
"""

from ssmblocks.zoo import dvmsr, eamamba, mair, mambacsr, mambair, mambairv2, medvsr, vsrm
from ssmblocks.zoo._image import SwinIRSkeleton
from ssmblocks.zoo._unet import RestormerUNet
from ssmblocks.zoo._video import SecondOrderVSR
from ssmblocks.zoo.dvmsr import DVMSR
from ssmblocks.zoo.eamamba import EAMamba, EAMambaSR
from ssmblocks.zoo.mair import MaIR, MaIRUNet
from ssmblocks.zoo.mambacsr import MambaCSR
from ssmblocks.zoo.mambair import MambaIR, MambaIRUNet
from ssmblocks.zoo.mambairv2 import MambaIRv2
from ssmblocks.zoo.medvsr import MedVSR
from ssmblocks.zoo.vsrm import VSRM

__all__ = ["DVMSR", "VSRM", "EAMamba", "EAMambaSR", "MaIR", "MaIRUNet", "MambaCSR", "MambaIR", "MambaIRUNet",
           "MambaIRv2", "MedVSR", "RestormerUNet", "SecondOrderVSR", "SwinIRSkeleton", "dvmsr", "eamamba", "mair",
           "mambacsr", "mambair", "mambairv2", "medvsr", "vsrm"]
