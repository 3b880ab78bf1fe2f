"""Offline validation of a deployment: topology files, link graph, rules, reports, graphs.

``nngsec check POLICY [TOPOLOGY...]`` loads a policy and the topologies that describe who
runs what where, connects every dial to the listens it reaches (through key-less relays),
and runs each rule of :mod:`._rules` over the result. ``nngsec explain`` (:mod:`._explain`)
answers the reverse question for one identity: what does losing its keys expose?
"""
