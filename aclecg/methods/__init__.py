"""Self-supervised methods behind one registry (see docs/methods.md).

>>> from aclecg.methods import create_method
>>> method = create_method("acl_ecg", "small")
>>> method.default_augmentation
'physio'
"""

from aclecg.methods import (  # noqa: F401  (register)
    acl_ecg,
    barlow,
    byol,
    dla,
    dlc,
    lcd,
    moco,
    moco_v2,
    moco_v3,
    simclr,
    simsiam,
    vicreg,
)
from aclecg.methods.base import SSLMethod
from aclecg.methods.distributed import gather_with_grad
from aclecg.methods.momentum import MomentumMethod
from aclecg.methods.registry import (
    ALIASES,
    METHODS,
    MethodInfo,
    create_method,
    get_method_class,
    list_methods,
    loss_terms,
    method_info,
    register_method,
)

__all__ = [
    "ALIASES",
    "METHODS",
    "MethodInfo",
    "MomentumMethod",
    "SSLMethod",
    "create_method",
    "gather_with_grad",
    "get_method_class",
    "list_methods",
    "loss_terms",
    "method_info",
    "register_method",
]
