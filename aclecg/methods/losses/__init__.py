"""The objectives of the self-supervised methods, one module per loss (in the style of lightly's ``loss`` package).

Every loss is a pure function of the projections (no parameters, no state), computed in float32 whatever the
autocast context (:func:`~aclecg.methods.precision.float32_loss`) and over the global batch under
``torch.distributed`` (:mod:`aclecg.methods.distributed`). The methods call these functions; a loss that combines
weighted terms returns them too with ``return_terms=True``, for the method's output dict. Those weighted sums are
not wrapped in ``float32_loss`` themselves: their terms are float32 already, and wrapping the sum would cast a
shared bf16 input once instead of once per term, which changes how its gradient is rounded.

* ``ntxent``: :func:`nt_xent`, :func:`nt_xent_batched` (SimCLR; a building block of DLC, DLA and ACL-ECG);
* ``infonce``: :func:`moco_queue_loss` (MoCo v2), :func:`moco_v3_loss` (MoCo v3);
* ``negative_cosine``: :func:`byol_loss` (BYOL, LCD), :func:`simsiam_loss` (SimSiam);
* ``barlow``: :func:`barlow_twins_loss`, :func:`barlow_twins_terms` (Barlow Twins, LCD's decorrelation term);
* ``vicreg``: :func:`vicreg_loss`, :func:`vicreg_terms` (VICReg);
* ``dense_lead_contrast``: :func:`dlc_loss`, :func:`dlc_terms`, :func:`lead_pair_nt_xent` (DLC);
* ``lead_alignment``: :func:`dla_loss`, :func:`lead_assignment_loss`, :func:`lead_aligned_instance_loss` (DLA);
* ``lead_correlation``: :func:`lcd_loss`, :func:`lcd_terms`, :func:`random_other_lead` (LCD);
* ``region_contrast``: :func:`acl_ecg_loss`, :func:`region_nt_xent` (ACL-ECG).

Example:
    >>> import torch
    >>> from aclecg.methods.losses import nt_xent
    >>> float(nt_xent(torch.randn(8, 16), torch.randn(8, 16), temperature=0.1)) > 0
    True
"""

from aclecg.methods.losses.barlow import barlow_twins_loss, barlow_twins_terms, batch_standardize, cross_correlation
from aclecg.methods.losses.dense_lead_contrast import dlc_loss, dlc_terms, lead_pair_nt_xent
from aclecg.methods.losses.infonce import moco_queue_loss, moco_v3_loss
from aclecg.methods.losses.lead_alignment import dla_loss, lead_aligned_instance_loss, lead_assignment_loss
from aclecg.methods.losses.lead_correlation import lcd_loss, lcd_terms, random_other_lead
from aclecg.methods.losses.negative_cosine import byol_loss, simsiam_loss
from aclecg.methods.losses.ntxent import nt_xent, nt_xent_batched
from aclecg.methods.losses.region_contrast import acl_ecg_loss, region_nt_xent
from aclecg.methods.losses.vicreg import vicreg_loss, vicreg_terms

__all__ = [
    "acl_ecg_loss",
    "barlow_twins_loss",
    "barlow_twins_terms",
    "batch_standardize",
    "byol_loss",
    "cross_correlation",
    "dla_loss",
    "dlc_loss",
    "dlc_terms",
    "lcd_loss",
    "lcd_terms",
    "lead_aligned_instance_loss",
    "lead_assignment_loss",
    "lead_pair_nt_xent",
    "moco_queue_loss",
    "moco_v3_loss",
    "nt_xent",
    "nt_xent_batched",
    "random_other_lead",
    "region_nt_xent",
    "simsiam_loss",
    "vicreg_loss",
    "vicreg_terms",
]
