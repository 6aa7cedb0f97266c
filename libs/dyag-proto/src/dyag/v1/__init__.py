"""Generated from proto/dyag/v1 by libs/dyag-proto/generate.py."""
