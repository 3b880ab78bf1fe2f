"""Request/reply with contexts: the dashboard sends three commands at once, each in its
own context, to two redundant controllers; every reply is bound to its request.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/reqrep.py``.
"""

import threading

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")
controllers = {
    name: nngsec.Node(policy, identity=name, keystore="factory/keys")
    for name in ("controller-a", "controller-b")
}

servers = [
    node.attach(pynng.Rep0(listen=f"inproc://example-{name}", recv_timeout=200), "control")
    for name, node in controllers.items()
]
client = dashboard.attach(pynng.Req0(recv_timeout=2000), "control")
for name in controllers:
    client.dial(f"inproc://example-{name}")  # NNG shares the requests out between them
stop = threading.Event()


def serve(server: nngsec.SecureSocket) -> None:
    while not stop.is_set():
        try:
            request = server.recv()  # from an authenticated client
        except pynng.Timeout:
            continue
        server.send(b"done: " + request.payload)  # answers the request just received


def command(line: int, replies: list[nngsec.Received]) -> None:
    with client.new_context() as context:  # one outstanding request per context
        context.send(b"set-speed line %d" % line)
        replies.append(context.recv())  # only the reply to this context's request


replies: list[nngsec.Received] = []
threads = [threading.Thread(target=serve, args=(server,)) for server in servers]
threads += [threading.Thread(target=command, args=(line, replies)) for line in (1, 2, 3)]
for thread in threads:
    thread.start()
for thread in threads[len(servers) :]:
    thread.join()
stop.set()
for thread in threads[: len(servers)]:
    thread.join()

for reply in sorted(replies, key=lambda message: message.payload):
    print(reply.payload, "from a controller:", reply.sender in controllers)
for sock in (client, *servers):
    sock.close()
for node in (dashboard, *controllers.values()):
    node.close()
