"""Lockstep studies: variants of one recipe trained on identical batches, and their comparison."""
