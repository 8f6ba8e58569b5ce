"""Self-supervised methods behind one registry (see docs/methods.md).

>>> from aclecg.methods import create_method
>>> method = create_method("acl_ecg", "small")
>>> method.default_augmentation
'physio'
"""

from aclecg.methods.registry import (ALIASES, METHODS, MethodInfo, create_method, get_method_class, list_methods,
                                     method_info, register_method)
from aclecg.methods.base import SSLMethod
from aclecg.methods.momentum import MomentumMethod
from aclecg.methods import simclr, moco, byol, simsiam, barlow, vicreg, dlc, lcd, dla, acl_ecg  # noqa: F401  (register)
from aclecg.methods.distributed import gather_with_grad
from aclecg.models import REFERENCE_ARMS

__all__ = ["ALIASES", "METHODS", "MethodInfo", "SSLMethod", "MomentumMethod", "create_method", "get_method_class",
           "list_methods", "method_info", "register_method", "gather_with_grad", "REFERENCE_ARMS"]
