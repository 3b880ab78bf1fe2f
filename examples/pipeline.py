"""Pipeline: the scheduler fans jobs out to two workers; each job reaches one of them.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/pipeline.py``.
"""

import contextlib
import time

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
scheduler = nngsec.Node(policy, identity="scheduler", keystore="factory/keys")
names = ("worker-1", "worker-2")
workers = [nngsec.Node(policy, identity=name, keystore="factory/keys") for name in names]

url = "inproc://example-pipeline"
push = scheduler.attach(pynng.Push0(listen=url), "jobs")
pulls = [worker.attach(pynng.Pull0(dial=url, recv_timeout=100), "jobs") for worker in workers]
while len(push.pipes) < 2:
    time.sleep(0.01)

for number in range(4):
    push.send(b"job %d" % number)  # sealed to the pullers' audience key, signed
done: list[nngsec.Received] = []
while len(done) < 4:
    for pull in pulls:  # NNG shares the jobs out between the connected workers
        with contextlib.suppress(pynng.Timeout):
            done.append(pull.recv())
for job in sorted(done, key=lambda message: message.payload):
    print(job.payload, "from", job.sender)

for sock in (push, *pulls):
    sock.close()
for node in (scheduler, *workers):
    node.close()
