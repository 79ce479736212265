"""Workflows: what each analysis level does, built from the numeric and I/O modules."""
