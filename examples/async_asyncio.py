"""asyncio: concurrent requests in contexts, and a subscriber read with ``async for``.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/async_asyncio.py``.
"""

import asyncio

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")
controller = nngsec.Node(policy, identity="controller-a", keystore="factory/keys")
sensor = nngsec.Node(policy, identity="sensor-1", keystore="factory/keys")


async def serve(context: nngsec.SecureContext) -> None:
    request = await context.arecv()
    await context.asend(b"done: " + request.payload)


async def command(client: nngsec.SecureSocket, line: int) -> bytes:
    with client.new_context() as context:
        await context.asend(b"set-speed line %d" % line)
        return (await context.arecv()).payload


async def requests() -> None:
    with (
        controller.attach(pynng.Rep0(listen="inproc://example-async-rep"), "control") as server,
        dashboard.attach(pynng.Req0(dial="inproc://example-async-rep"), "control") as client,
    ):
        contexts = [server.new_context() for _ in range(3)]
        async with asyncio.TaskGroup() as group:
            for context in contexts:
                group.create_task(serve(context))
            answers = await asyncio.gather(*(command(client, line) for line in (1, 2, 3)))
        for context in contexts:
            context.close()
    print(answers)


async def readings() -> None:
    with (
        sensor.attach(pynng.Pub0(listen="inproc://example-async-pub"), "telemetry") as pub,
        dashboard.attach(pynng.Sub0(dial="inproc://example-async-pub"), "telemetry") as sub,
    ):
        sub.subscribe("temp.")
        while not pub.pipes:
            await asyncio.sleep(0.01)
        for number in range(3):
            await pub.asend(b"%d" % (20 + number), topic="temp.line1")
        async for message in sub:  # ends when the socket is closed
            print(message.topic, message.payload)
            if message.payload == b"22":
                break


async def main() -> None:
    async with asyncio.timeout(5):  # an example that hangs fails instead
        await requests()
        await readings()


with dashboard, controller, sensor:
    asyncio.run(main())
