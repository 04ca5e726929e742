"""Fakes of GHL and Wizehire for development, demos and end-to-end tests."""
