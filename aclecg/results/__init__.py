"""The answer to the paper's question, from finished sweep cells (above :mod:`aclecg.evaluation`).

* :mod:`~aclecg.results.hypothesis`: Holm, TOST, the t test over rotations, power and the hierarchical bootstrap;
* :mod:`~aclecg.results.verdict`: the hypotheses under test and the three-way verdict;
* :mod:`~aclecg.results.power`: variance components and the sample-size planner;
* :mod:`~aclecg.results.study`: the study over test-fold rotations (paper table, best baseline, primary test);
* :mod:`~aclecg.results.report`, :mod:`~aclecg.results.report_sections`, :mod:`~aclecg.results.study_report`:
  the per-sweep report, the model cards and docs/results.md.

The scoring primitives they build on (:mod:`aclecg.stats`, :mod:`aclecg.metrics`) sit below
:mod:`aclecg.evaluation`, which scores every cell with them. Modules are imported one by one.
"""
