"""Rejections: frames that fail a check are dropped and counted by reason (the default),
or raised as ``nngsec.Rejected`` with ``on_reject="raise"`` (and by ``Node.open``).

Run it beside the deployment ``nngsec init factory`` made: ``python examples/on_reject.py``.
"""

import time

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
now = float(int(time.time()))  # fixed clocks, so that this example prints the same each run
sensor = nngsec.Node(policy, identity="sensor-1", keystore="factory/keys", clock=lambda: now)
# A sensor whose clock runs a minute ahead:
ahead = nngsec.Node(policy, identity="sensor-2", keystore="factory/keys", clock=lambda: now + 60)
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys", clock=lambda: now)

good = sensor.seal("telemetry", b"21.5", topic="temp.line1")
fresh = sensor.seal("telemetry", b"21.6", topic="temp.line1")
tampered = fresh[:-1] + bytes([fresh[-1] ^ 1])  # one bit flipped in flight
future = ahead.seal("telemetry", b"22.0", topic="temp.line2")
last = sensor.seal("telemetry", b"21.7", topic="temp.line1")

# The default, on_reject="drop": recv() drops bad frames, counts them and waits on.
url = "inproc://example-on-reject"
with (
    pynng.Pub0(listen=url) as wire,  # plain pynng: it sends whatever bytes it is given
    dashboard.attach(pynng.Sub0(dial=url, recv_timeout=2000), "telemetry") as sub,
):
    sub.subscribe("temp.")
    while not wire.pipes:
        time.sleep(0.01)
    for frame in (good, tampered, future, good, last):  # good twice: the second is a replay
        wire.send(frame)
    print("received:", sub.recv().payload, sub.recv().payload)
    print("rejected:", dict(sorted(sub.stats.rejected.items())))

# Node.open (and a socket attached with on_reject="raise") raises, with reason and detail.
archiver = nngsec.Node(policy, identity="archiver", keystore="factory/keys", clock=lambda: now)
with archiver:
    for frame in (good, good, tampered, future):
        try:
            message = archiver.open("telemetry", frame)
            print("accepted:", message.payload)
        except nngsec.Rejected as rejected:
            print(f"{rejected.reason}: {rejected.detail}")
    try:
        sensor.open("telemetry", good)  # sensor-1 publishes on telemetry, it does not read it
    except nngsec.Rejected as rejected:
        print(f"{rejected.reason}: {rejected.detail}")

for node in (sensor, ahead, dashboard):
    node.close()
