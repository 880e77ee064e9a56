"""The bundled example integration: copy pets from the Petstore provider into the inventory.

This package is a *fixture and demo*, not part of the harness API. It exists so that every stage
of the harness (contract tests, fault scenarios, load profiles, the CI gate) has a real program to
run against, and so that the difference between a careful and a naive integration is visible:

* ``petstore_sync.careful`` implements the ``error_handling`` policy of
  ``contracts/petstore/integration.yaml`` (retries, backoff, re-authentication, rate limiting,
  quarantine, alerts).
* ``petstore_sync.naive`` is the same job written in a hurry; it works on a healthy provider and
  breaks on the first fault.

Both share the record mapping in ``petstore_sync.mapping`` so that they differ only in how they
talk to the network.
"""
