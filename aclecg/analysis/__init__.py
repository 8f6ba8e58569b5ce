"""What an encoder's representations say, above :mod:`aclecg.evaluation` (embeddings) and below the app and the
command line.

* :mod:`~aclecg.analysis.neighbours` / :mod:`~aclecg.analysis.neighbours_eval`: similar-ECG search and its
  evaluation (label agreement of the nearest neighbours, in blocks);
* :mod:`~aclecg.analysis.attribution` / :mod:`~aclecg.analysis.attribution_eval`: occlusion of lead regions and
  leads, and its evaluation against the labels;
* :mod:`~aclecg.analysis.similarity`: lead and region similarity of the lead features;
* :mod:`~aclecg.analysis.embed2d`, :mod:`~aclecg.analysis.umap_steps`, :mod:`~aclecg.analysis.umap_learn` and
  :mod:`~aclecg.analysis.record_map`: the 2-D maps (fast UMAP-style, umap-learn) and the cached map of a record set.

Modules are imported one by one (``from aclecg.analysis import embed2d``): this package imports nothing itself,
so a page that needs one map pays for no other.
"""
