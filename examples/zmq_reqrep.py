"""nngsec over ZeroMQ: REQ/REP with ``Node.seal``, ``Node.reply`` and ``Node.open``
(``pip install pyzmq``).

Run it beside the deployment ``nngsec init factory`` made: ``python examples/zmq_reqrep.py``.
"""

import threading

import zmq

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")
controller = nngsec.Node(policy, identity="controller-a", keystore="factory/keys")


def serve(rep: zmq.Socket[bytes], requests: int) -> None:
    for _ in range(requests):
        request = controller.open("control", rep.recv())  # raises nngsec.Rejected if bad
        rep.send(controller.reply(request, b"done: " + request.payload))  # bound to it


with (
    dashboard,
    controller,
    zmq.Context() as context,
    context.socket(zmq.REP) as rep,
    context.socket(zmq.REQ) as req,
):
    port = rep.bind_to_random_port("tcp://127.0.0.1")
    req.connect(f"tcp://127.0.0.1:{port}")
    req.rcvtimeo = 2000
    server = threading.Thread(target=serve, args=(rep, 2))
    server.start()
    for line in (1, 2):
        req.send(dashboard.seal("control", b"set-speed line %d" % line))
        reply = dashboard.open("control", req.recv())
        print(reply.sender, reply.payload, "a reply:", reply.is_reply)
    server.join()
