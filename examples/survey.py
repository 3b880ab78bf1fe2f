"""Survey: the dashboard asks every sensor and worker whether it is healthy, and collects
the authenticated answers until the survey time ends.

Run it beside the deployment ``nngsec init factory`` made: ``python examples/survey.py``.
"""

import threading
import time

import pynng

import nngsec

policy = nngsec.load_policy("factory/factory.yaml")
dashboard = nngsec.Node(policy, identity="dashboard", keystore="factory/keys")
names = ("sensor-1", "sensor-2", "worker-1", "worker-2")
nodes = [nngsec.Node(policy, identity=name, keystore="factory/keys") for name in names]

url = "inproc://example-survey"
surveyor = dashboard.attach(pynng.Surveyor0(listen=url, survey_time=500), "health")
respondents = [node.attach(pynng.Respondent0(dial=url), "health") for node in nodes]
while len(surveyor.pipes) < len(respondents):
    time.sleep(0.01)  # a survey goes only to the respondents connected when it is sent


def answer(respondent: nngsec.SecureSocket) -> None:
    question = respondent.recv()  # sealed to the respondents, signed by the dashboard
    respondent.send(b"ok, asked by " + question.sender.encode())  # only the surveyor reads it


threads = [threading.Thread(target=answer, args=(r,)) for r in respondents]
for thread in threads:
    thread.start()
responses = surveyor.survey(b"healthy?")  # returns when the survey time is over
for thread in threads:
    thread.join()

for response in sorted(responses, key=lambda message: message.sender):
    print(response.sender, response.payload)
for sock in (surveyor, *respondents):
    sock.close()
for node in (dashboard, *nodes):
    node.close()
