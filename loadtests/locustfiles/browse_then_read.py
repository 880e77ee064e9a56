"""Your own locustfile under `harness load`: a user that lists a page of pets, then reads one.

Run it with the spec's profile, thresholds and cross-check:

    harness load contracts/petstore/integration.yaml --locustfile loadtests/locustfiles/browse_then_read.py

`harness load` loads `harness_hooks` (shipped in the harness package) before this file, so the
plan's base URL, timeout, auth (one shared token per process), pacing and stages are one
import away. Keep the users FastHttpUser, name each request after its operationId (the
thresholds and the report go by those names), and subclass `PlanShape` so the run follows the
profile's stages and ends by itself.
"""

from __future__ import annotations

import harness_hooks as hooks
from locust import FastHttpUser, task


class BrowseThenRead(FastHttpUser):
    host = hooks.BASE_URL
    network_timeout = hooks.TIMEOUT
    connection_timeout = hooks.TIMEOUT
    max_retries = 0
    insecure = False  # verify TLS certificates (FastHttpUser does not by default)

    def on_start(self) -> None:
        hooks.stagger(self)

    def wait_time(self) -> float:
        return hooks.pacing(self)

    @task
    def browse_then_read(self) -> None:
        headers: dict[str, str] = {}
        url, _token = hooks.AUTH.apply(self, "/pets?page=1&per_page=5", headers)
        page = self.client.get(url, name="listPets", headers=headers)
        items = page.json().get("items") if page.status_code == 200 else None
        if items:
            url, _token = hooks.AUTH.apply(self, f"/pets/{items[0]['id']}", headers)
            self.client.get(url, name="getPet", headers=headers)


class Shape(hooks.PlanShape):
    """Follow the profile's stages (users, rate, duration) and end with them."""
