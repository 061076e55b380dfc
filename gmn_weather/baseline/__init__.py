"""The feature baseline: gradient boosting on per-image sky statistics, on the same folds.

``features`` computes the statistics of one decoded image (pure), ``feature_cache`` computes
them once per image file and caches them, ``gbm`` fits scikit-learn's
``HistGradientBoostingClassifier`` fold by fold and returns OOF tables shaped like a
network's, so the baseline takes part in every comparison.
"""
