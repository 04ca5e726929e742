"""HighLevel (GHL): webhook events (and, later, the API client, auth and rate limits)."""
