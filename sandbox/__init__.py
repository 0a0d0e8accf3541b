"""A local reference implementation of the platform API (a later issue)."""
