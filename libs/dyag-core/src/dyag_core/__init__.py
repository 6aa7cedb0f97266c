"""Dyag's pure domain. It imports no web, RPC or bus framework, so it is fast to test."""
