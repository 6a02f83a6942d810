"""Models record their full hyperparameters, so any model can be saved, rebuilt and compared with a release.

``@records_hparams`` on a model class stores, after ``__init__``, every constructor argument (defaults included)
in ``model.model_args``: a model built directly from its class, by ``create_model`` or by ``load_checkpoint``
carries the same complete description. The class attribute ``default_architecture`` names a registered entry
point that rebuilds the class from those arguments (used by ``save_for_hub`` for models built from the class).
An argument given as None ("derive it") is recorded as the value the model derived, when the model keeps it in
an attribute of the same name (e.g. MambaIR's ``cab_variant``).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, TypeVar

from torch import nn

__all__ = ["records_hparams"]

T = TypeVar("T", bound=type)


def records_hparams(cls: T) -> T:
    """Class decorator: ``self.model_args`` = all constructor arguments after ``__init__`` (keyword form)."""
    init = cls.__init__
    signature = inspect.signature(init)

    @functools.wraps(init)
    def init_and_record(self, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if type(self) is cls:                        # a subclass records its own arguments
            bound = signature.bind(self, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            arguments.pop(next(iter(signature.parameters)))  # self
            for name, param in signature.parameters.items():
                if param.kind is inspect.Parameter.VAR_KEYWORD:
                    arguments.update(arguments.pop(name, {}))
            for name, value in arguments.items():     # None = "derive it": record what the model derived
                if value is None and getattr(self, name, None) is not None and not isinstance(
                        getattr(self, name), nn.Module):
                    arguments[name] = getattr(self, name)
            self.model_args = arguments

    cls.__init__ = init_and_record
    return cls
