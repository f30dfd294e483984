"""Search methods behind one interface (grid, random, bayes), like Optuna's samplers."""
