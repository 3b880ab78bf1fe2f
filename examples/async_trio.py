"""trio: the same as the asyncio example, with a nursery (``pip install trio``).

Run it beside the deployment ``nngsec init factory`` made: ``python examples/async_trio.py``.
"""

import pynng
import trio

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")
controller = nngsec.Node(policy, identity="controller-a", keystore="factory/keys")
sensor = nngsec.Node(policy, identity="sensor-1", keystore="factory/keys")


async def serve(context: nngsec.SecureContext) -> None:
    request = await context.arecv()
    await context.asend(b"done: " + request.payload)


async def command(client: nngsec.SecureSocket, line: int, answers: dict[int, bytes]) -> None:
    with client.new_context() as context:
        await context.asend(b"set-speed line %d" % line)
        answers[line] = (await context.arecv()).payload


async def requests() -> None:
    with (
        controller.attach(pynng.Rep0(listen="inproc://example-trio-rep"), "control") as server,
        dashboard.attach(pynng.Req0(dial="inproc://example-trio-rep"), "control") as client,
    ):
        contexts = [server.new_context() for _ in range(3)]
        answers: dict[int, bytes] = {}
        async with trio.open_nursery() as nursery:
            for context in contexts:
                nursery.start_soon(serve, context)
            for line in (1, 2, 3):
                nursery.start_soon(command, client, line, answers)
        for context in contexts:
            context.close()
    print([answers[line] for line in sorted(answers)])


async def readings() -> None:
    with (
        sensor.attach(pynng.Pub0(listen="inproc://example-trio-pub"), "telemetry") as pub,
        dashboard.attach(pynng.Sub0(dial="inproc://example-trio-pub"), "telemetry") as sub,
    ):
        sub.subscribe("temp.")
        while not pub.pipes:
            await trio.sleep(0.01)
        for number in range(3):
            await pub.asend(b"%d" % (20 + number), topic="temp.line1")
        async for message in sub:
            print(message.topic, message.payload)
            if message.payload == b"22":
                break


async def main() -> None:
    with trio.fail_after(5):  # an example that hangs fails instead
        await requests()
        await readings()


with dashboard, controller, sensor:
    trio.run(main)
