"""Names vulture cannot see used (``make lint`` runs it): read by libraries, not by our code.

Every entry says who reads it. A name that is really unused belongs deleted, not here.
"""

# ruff: noqa: B018, F821
_.__module__  # set on the public names in nngsec/__init__.py, read by pickle and tracebacks
_.required  # argparse reads it on the sub-command action
_.yaml_implicit_resolvers  # PyYAML's resolver table (the YAML 1.2 core schema)
model_config  # pydantic
created  # channel-key file field, written for people and tools reading the file
exc, tb, traceback  # the context-manager protocol's __exit__ arguments
_.asurvey  # public API: SecureSocket.asurvey (the asynchronous survey)
TestReplayWindow  # pytest collects the hypothesis state machine's TestCase
pytestmark  # pytest reads a module-level pytestmark
restore_route  # pytest: a fixture of tests/test_crypto_routes.py, named in usefixtures marks
_.send_timeout  # pynng socket option: set for nng, which reads it
_.survey_time  # pynng socket option: set for nng, which reads it
no_thread_left_behind  # pytest: a fixture of tests/conftest.py, named in usefixtures marks
__getattr__, __dir__  # PEP 562: Python calls them on a module (nngsec/__init__.py)
_.field_title_should_be_set  # pydantic's GenerateJsonSchema calls it (_formats/_json_schema.py)
no_checkpoint_thread_outlives_the_tests  # pytest runs the autouse fixture
keygen_until_killed  # tests/foundation/test_keygen_crash.py runs it with python -c (a real process)
both_ways_of_writing  # pytest runs the autouse fixture of tests/foundation/test_atomic.py
_.rcvtimeo  # pyzmq reads the socket option (examples/zmq_*.py, tests/test_zmq.py)
do_POST, log_message, _.daemon_threads  # http.server calls them (tests/test_red_team_inputs.py)
