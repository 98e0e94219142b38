"""Running one recipe (train, then evaluate and report), evaluating a saved run or checkpoint, the LR range test."""
