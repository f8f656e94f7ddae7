"""Faust agents and their tables: the reactive half of the pipeline."""
