"""Clockwork: declarative deploys on pyinfra."""
