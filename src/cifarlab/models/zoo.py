"""Imports every model family so that each registers its constructors."""

# One family per module; add a new family here.
