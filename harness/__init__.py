"""integration-harness: readiness testing for third-party API integrations.

The public surface is small on purpose: the ``harness`` command, the pytest plugin,
and the spec model in :mod:`harness.spec`. Everything else is internal and may change.
"""

__version__ = "0.1.0"
