"""Market data and news providers, the simulated market and sentiment (a later issue)."""
