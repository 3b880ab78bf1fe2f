"""Bus: three cells, each message signed by its sender and read by the other two.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/bus.py``.
"""

import time

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
names = ("cell-1", "cell-2", "cell-3")
nodes = {name: nngsec.Node(policy, identity=name, keystore="factory/keys") for name in names}
cells = {
    name: node.attach(pynng.Bus0(listen=f"inproc://example-{name}", recv_timeout=2000), "cells")
    for name, node in nodes.items()
}
cells["cell-1"].dial("inproc://example-cell-2")  # a full mesh: NNG's bus does not forward
cells["cell-1"].dial("inproc://example-cell-3")
cells["cell-2"].dial("inproc://example-cell-3")
while not all(len(cell.pipes) == 2 for cell in cells.values()):
    time.sleep(0.01)  # a bus drops what it sends before its peers are connected

for name, cell in cells.items():
    cell.send(f"{name} is at tick 7".encode())
for name, cell in cells.items():
    heard = sorted(cell.recv().sender for _ in range(2))  # the two others, authenticated
    print(name, "heard from", ", ".join(heard))

for name in names:
    cells[name].close()
    nodes[name].close()
