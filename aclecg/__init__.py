"""ACL-ECG Studio: anatomy-aware contrastive learning on 12-lead ECGs.

The pipeline, in the order data and imports flow: :mod:`aclecg.leads` → :mod:`aclecg.data` → :mod:`aclecg.augment`
→ :mod:`aclecg.models` → :mod:`aclecg.methods` → :mod:`aclecg.training` → :mod:`aclecg.evaluation` →
:mod:`aclecg.jobs` / :mod:`aclecg.viz` / :mod:`aclecg.report` → :mod:`aclecg.commands` and the app's pages.
"""

__version__ = "0.9.0"
