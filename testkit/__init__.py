"""What the tests and benchmarks run beside pylambda, and the wheel does not ship.

Debian sid's CPython 3.13 to 3.15 in a root of their own (``sid_root``), the
official client laid out to run beside pylambda (``baseline``), LocalStack in
host mode (``localstack``), and Docker with stand-ins for the images that
``sam local`` and image builds pull (``docker_standin``). Each builds on
``pylambda_build``, never the other way round.
"""
