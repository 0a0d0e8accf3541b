"""The agent's outbox of decision records, purely: batches by count, age and size, kept
while the gateway is away, dropped when it refuses them. A stand-in gateway and clock."""

from agent_runtime.gateway import GatewayError, Refused
from agent_runtime.outbox import BATCH, BATCH_BYTES, WAIT_SECONDS, Outbox


class Gateway:
    def __init__(self):
        self.batches: list[list[dict]] = []
        self.failure: Exception | None = None

    def decisions(self, records):
        if self.failure:
            raise self.failure
        self.batches.append([r["cycle"] for r in records])
        return {"kept": len(records)}


class Clock:
    now = 0.0

    def __call__(self):
        return self.now


def record(cycle, padding=0):
    return {"cycle": cycle, "inputs": {"pad": "x" * padding}}


def test_records_go_in_batches_when_full_or_old_and_all_on_the_way_out():
    clock, gateway = Clock(), Gateway()
    outbox = Outbox(clock)
    for cycle in range(BATCH - 1):
        outbox.add(record(cycle))
    assert outbox.send(gateway) is None and gateway.batches == []  # neither full nor old
    outbox.add(record(BATCH - 1))
    assert outbox.send(gateway) is None and gateway.batches == [list(range(BATCH))]
    outbox.add(record(100))
    clock.now += WAIT_SECONDS
    outbox.send(gateway)
    assert gateway.batches[-1] == [100]  # waited long enough
    outbox.add(record(101))
    outbox.send(gateway, force=True)
    assert gateway.batches[-1] == [101]


def test_records_wait_for_an_absent_gateway_and_are_dropped_when_refused():
    clock, gateway = Clock(), Gateway()
    outbox = Outbox(clock)
    for cycle in range(3):
        outbox.add(record(cycle))
    gateway.failure = GatewayError("gateway unreachable: ConnectError")
    assert "kept for later" in outbox.send(gateway, force=True)
    gateway.failure = None
    outbox.send(gateway, force=True)
    assert gateway.batches == [[0, 1, 2]]  # nothing lost, nothing twice
    outbox.add(record(3))
    gateway.failure = Refused(422, "records.0.cycle: too large")
    assert "refused and dropped" in outbox.send(gateway, force=True)
    gateway.failure = None
    assert outbox.send(gateway, force=True) is None and gateway.batches == [[0, 1, 2]]


def test_a_batch_stays_under_the_gateway_body_cap():
    clock, gateway = Clock(), Gateway()
    outbox = Outbox(clock)
    for cycle in range(6):
        outbox.add(record(cycle, padding=BATCH_BYTES // 3))
    outbox.add(record(99, padding=BATCH_BYTES))  # too large to ever send: dropped at once
    while outbox.pending:
        outbox.send(gateway, force=True)
    assert gateway.batches == [[0, 1], [2, 3], [4, 5]]
