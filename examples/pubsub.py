"""Pub/sub: a sensor publishes readings, the dashboard reads the temperatures.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/pubsub.py``.
"""

import time

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
sensor = nngsec.Node(policy, identity="sensor-1", keystore="factory/keys")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")

url = "inproc://example-pubsub"
with (
    sensor,
    dashboard,
    sensor.attach(pynng.Pub0(listen=url), "telemetry") as pub,
    dashboard.attach(pynng.Sub0(dial=url, recv_timeout=2000), "telemetry") as sub,
):
    sub.subscribe("temp.")  # NNG's own prefix filter, applied to the clear topic
    while not pub.pipes:  # a publisher drops what it sends before anyone is connected
        time.sleep(0.01)
    pub.send(b"21.5", topic="temp.line1")
    pub.send(b"40%", topic="hum.line1")  # not subscribed to: NNG filters it out
    pub.send(b"22.0", topic="temp.line2")
    for _ in range(2):
        message = sub.recv()  # verified and decrypted
        print(message.sender, message.topic, message.payload)
    print("rejected:", dict(sub.stats.rejected), "filtered:", sub.stats.filtered)
