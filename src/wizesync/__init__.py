"""wizesync: a webhook-driven payments sync between Wizehire and HighLevel (GHL)."""

__version__ = "0.1.0"
