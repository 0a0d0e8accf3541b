"""What agents call (DESIGN §4.2): identity, bootstrap and heartbeats; cached news and
quotes; the LLM. Vendor SDKs and vendor keys live here and nowhere else; an agent never
sees one. Nothing here may hand an agent another agent's data or any orchestrator key.
"""
