"""Telling humans: Slack."""
