"""Persistence: models, engine and repositories. All SQL of the service lives in this package."""
