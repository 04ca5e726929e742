"""Wizehire: its webhook events, and the client of its API (with the API's bodies and auth)."""
