"""The store: tables, migrations and every transaction over them (DESIGN §2 "store").

This package is the only place that talks SQL. It owns the agents and their timeline,
the kill switch, the alert outbox, metered usage, schedules and reports, the lease that
makes one daemon the fleet's only one, and what the daemon knows of the store's health. It decides
nothing: it records what `control/` and `operations/` decided, each change with the
event that explains it, in one transaction. It never imports another box.
"""
