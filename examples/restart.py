"""Replay state across restarts: a receiver remembers, on disk, what it accepted, so a
frame recorded before a restart is still refused after it.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/restart.py``.
"""

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
with nngsec.Node(policy, identity="sensor-1", keystore="factory/keys") as sensor:
    frame = sensor.seal("telemetry", b"21.5", topic="temp.line1")

with nngsec.Node(policy, identity="dashboard", keystore="factory/keys") as dashboard:
    print("accepted:", dashboard.open("telemetry", frame).payload)
    print("state in:", dashboard.state_dir)
# close() (here: the end of the with block) wrote the final replay state.

with nngsec.Node(policy, identity="dashboard", keystore="factory/keys") as restarted:
    try:
        restarted.open("telemetry", frame)  # the same frame, replayed after the restart
    except nngsec.Rejected as rejected:
        print("after a restart:", rejected.reason)

# state_dir=False keeps replay state in memory only: a restart forgets it.
forgetful = nngsec.Node(policy, identity="dashboard", keystore="factory/keys", state_dir=False)
with forgetful:
    print("in memory only, accepted again:", forgetful.open("telemetry", frame).payload)
