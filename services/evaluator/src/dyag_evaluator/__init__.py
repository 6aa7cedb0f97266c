"""evaluator: runs a target over a test set, scores it with dyag_core.evaluation, keeps runs and compares them."""
