"""The study as a declarative plan: a TOML study file, its tasks, and executors that run them.

* :mod:`~aclecg.studyplan.spec` - the study file, parsed and validated (:func:`load_study`);
* :mod:`~aclecg.studyplan.overrides` - ``--set KEY=VALUE``: the file's keys overridden before validation;
* :mod:`~aclecg.studyplan.encoders` - pretraining and embedding tasks (committed encoders reused);
* :mod:`~aclecg.studyplan.tasks` - :class:`StudyPlan`: every task with its key, dependencies and state;
* :mod:`~aclecg.studyplan.work` - what a worker runs for one task;
* :mod:`~aclecg.studyplan.executors` - the local process pool, Ray, and :func:`run_study`.

``aclecg study plan|run|report FILE`` is the command line; ``docs/evaluation.md`` and ``docs/cluster.md`` describe
the format and running it on a cluster.
"""

from __future__ import annotations

from aclecg.studyplan.spec import BEST_BASELINE, MethodSpec, Study, SweepStage, load_study

__all__ = ["BEST_BASELINE", "MethodSpec", "Study", "SweepStage", "load_study"]
