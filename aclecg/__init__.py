"""ACL-ECG Studio: anatomy-aware contrastive learning on 12-lead ECGs.

The pipeline, in the order data and imports flow: :mod:`aclecg.leads` → :mod:`aclecg.data` → :mod:`aclecg.augment`
→ :mod:`aclecg.models` → :mod:`aclecg.methods` → :mod:`aclecg.training` → :mod:`aclecg.evaluation` →
:mod:`aclecg.analysis` / :mod:`aclecg.results` → :mod:`aclecg.studyplan` → :mod:`aclecg.jobs` / :mod:`aclecg.viz`
→ :mod:`aclecg.commands` and the app's pages. docs/architecture.md lists every layer; tests/test_layers.py checks it.
"""

__version__ = "0.9.0"
