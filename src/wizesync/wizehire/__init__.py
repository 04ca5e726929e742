"""Wizehire: its webhook events (and, later, its API client)."""
