"""asyncio: a survey, answered by respondents that are tasks of the same event loop.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/async_survey.py``.
"""

import asyncio

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")
names = ("sensor-1", "sensor-2", "worker-1", "worker-2")
nodes = [nngsec.Node(policy, identity=name, keystore="factory/keys") for name in names]


async def answer(respondent: nngsec.SecureSocket) -> None:
    question = await respondent.arecv()
    await respondent.asend(b"ok, asked by " + question.sender.encode())


async def main() -> None:
    url = "inproc://example-async-survey"
    with dashboard.attach(pynng.Surveyor0(listen=url, survey_time=500), "health") as surveyor:
        respondents = [node.attach(pynng.Respondent0(dial=url), "health") for node in nodes]
        while len(surveyor.pipes) < len(respondents):
            await asyncio.sleep(0.01)
        async with asyncio.timeout(5), asyncio.TaskGroup() as group:
            for respondent in respondents:
                group.create_task(answer(respondent))
            responses = await surveyor.asurvey(b"healthy?")  # returns when the survey ends
        for response in sorted(responses, key=lambda message: message.sender):
            print(response.sender, response.payload)
        for respondent in respondents:
            respondent.close()


asyncio.run(main())
for node in (dashboard, *nodes):
    node.close()
