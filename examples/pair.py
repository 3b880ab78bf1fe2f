"""Pair: the dashboard and the archiver keep their state in sync, both ways.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/pair.py``.
"""

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")
archiver = nngsec.Node(policy, identity="archiver", keystore="factory/keys")

url = "inproc://example-pair"
with (
    dashboard,
    archiver,
    dashboard.attach(pynng.Pair0(listen=url, recv_timeout=2000), "sync") as left,
    archiver.attach(pynng.Pair0(dial=url, recv_timeout=2000), "sync") as right,
):
    left.send(b"state 41")  # sealed under a key only these two members can derive
    message = right.recv()
    print(message.sender, "->", "archiver:", message.payload)
    right.send(b"ack 41")
    message = left.recv()
    print(message.sender, "->", "dashboard:", message.payload)
