"""nngsec over ZeroMQ: PUB/SUB with ``Node.seal`` and ``Node.open`` (``pip install pyzmq``).

A pubsub frame starts with its clear topic and one 0x00 byte, so ZeroMQ's own prefix
subscription filters secured frames, as NNG's does.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/zmq_pubsub.py``.
"""

import zmq

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
sensor = nngsec.Node(policy, identity="sensor-1", keystore="factory/keys")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")

with (
    sensor,
    dashboard,
    zmq.Context() as context,
    context.socket(zmq.XPUB) as pub,  # an XPUB is a PUB that sees subscriptions arrive
    context.socket(zmq.SUB) as sub,
):
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    sub.connect(f"tcp://127.0.0.1:{port}")
    sub.subscribe(b"temp.")  # ZeroMQ's prefix filter, on nngsec's clear topic
    sub.rcvtimeo = 2000
    print("subscription:", pub.recv())  # b'\x01temp.': the subscriber is connected

    pub.send(sensor.seal("telemetry", b"21.5", topic="temp.line1"))
    pub.send(sensor.seal("telemetry", b"40%", topic="hum.line1"))  # filtered by ZeroMQ
    pub.send(sensor.seal("telemetry", b"22.0", topic="temp.line2"))
    for _ in range(2):
        message = dashboard.open("telemetry", sub.recv())  # verified and decrypted
        print(message.sender, message.topic, message.payload)
    print("anything else:", sub.poll(200) != 0)
