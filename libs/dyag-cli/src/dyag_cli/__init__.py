"""The dyag command line."""
