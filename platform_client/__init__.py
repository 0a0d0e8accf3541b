"""Typed HTTP client for the trading platform API (a later issue)."""
