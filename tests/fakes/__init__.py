"""Fakes of external services, for the tests: real servers on loopback that speak the real protocols."""
