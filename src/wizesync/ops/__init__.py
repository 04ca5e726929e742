"""What operators see: health, readiness, sync status, metrics and the admin API."""
