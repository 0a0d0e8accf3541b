"""Adapters for real data vendors, each a NewsSource and/or QuoteSource.

Vendor SDKs are imported only here, and only the orchestrator imports this package:
agents never see a vendor SDK or key.
"""
