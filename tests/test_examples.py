"""End-to-end tests of the bundled example integration (examples/petstore_sync).

The variants are run exactly as the harness runs them, as subprocesses configured through the
environment, against a real local HTTP fake (tests/fake_petstore.py). That is the only way to
test what matters here: exit codes, the stdout summary, ALERT lines on stderr, what reached the
destination, and that no secret is ever printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .fake_petstore import FakePetstore

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
INVALID_PET_ID = 60
PET_COUNT = 120

FULL_PET = {
    "id": 1,
    "name": "Rex",
    "status": "available",
    "birth_date": "2021-04-03",
    "weight_kg": 12.5,
    "tags": [{"id": 7, "name": "friendly"}, {"id": 8, "name": "house-trained"}],
    "nickname": None,
}
MINIMAL_PET = {"id": 2, "name": "Mia", "status": "sold", "birth_date": None}


def make_pets(*, with_invalid: bool) -> list[dict[str, Any]]:
    """120 pets; #1 and #2 are hand-written for exact assertions, #60 optionally invalid."""
    statuses = ("available", "pending", "sold")
    pets: list[dict[str, Any]] = [dict(FULL_PET), dict(MINIMAL_PET)]
    for pet_id in range(3, PET_COUNT + 1):
        pets.append(
            {
                "id": pet_id,
                "name": f"Pet {pet_id}",
                "status": statuses[pet_id % 3],
                "birth_date": f"20{pet_id % 20:02d}-{pet_id % 12 + 1:02d}-{pet_id % 28 + 1:02d}",
                "weight_kg": pet_id / 4,
                "tags": [{"id": pet_id, "name": f"tag-{pet_id % 5}"}],
            }
        )
    if with_invalid:
        pets[INVALID_PET_ID - 1] = {"id": INVALID_PET_ID, "name": "Ghost", "status": "lost"}
    return pets


def run_variant(
    variant: str,
    fake: FakePetstore,
    tmp_path: Path,
    *,
    page_size: int = 20,
    client_secret: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m petstore_sync.<variant>`` the way the harness does and check for leaks."""
    secret = fake.client_secret if client_secret is None else client_secret
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PROVIDER_", "DESTINATION_", "PETSTORE_", "HARNESS_"))
    }
    env.update(
        PROVIDER_URL=fake.url,
        DESTINATION_URL=fake.url,
        PETSTORE_CLIENT_ID=fake.client_id,
        PETSTORE_CLIENT_SECRET=secret,
        HARNESS_OUTPUT_DIR=str(tmp_path / "out"),
        PETSTORE_PAGE_SIZE=str(page_size),
        PYTHONDONTWRITEBYTECODE="1",
    )
    result = subprocess.run(
        [sys.executable, "-m", f"petstore_sync.{variant}"],
        cwd=EXAMPLES_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert_no_secrets(result, [secret, fake.client_secret, *fake.issued_tokens])
    return result


def assert_no_secrets(result: subprocess.CompletedProcess[str], secrets: list[str]) -> None:
    """Requirement (d), checked on every run: credentials and tokens never reach the output."""
    output = result.stdout + result.stderr
    for secret in secrets:
        assert secret not in output
    assert "Authorization" not in output


def summary_of(result: subprocess.CompletedProcess[str]) -> dict[str, int]:
    """The JSON summary: the last stdout line."""
    lines = result.stdout.strip().splitlines()
    assert lines, f"no summary on stdout; stderr:\n{result.stderr}"
    summary: dict[str, int] = json.loads(lines[-1])
    return summary


def alert_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """stderr lines in the spec's alert channel (log_pattern "ALERT ")."""
    return [line for line in result.stderr.splitlines() if line.startswith("ALERT ")]


def max_requests_in_one_second(times: list[float]) -> int:
    """The most requests seen in any one-second window (starting at a request)."""
    return max((sum(1 for t in times if start <= t < start + 1.0) for start in times), default=0)


def test_mapping_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shared mapping in-process: cheap to check field by field, and both variants use it."""
    monkeypatch.syspath_prepend(str(EXAMPLES_DIR))
    from petstore_sync.mapping import map_record, validate_record

    assert validate_record(FULL_PET) == []
    assert map_record(FULL_PET) == {
        "external_id": "1",
        "name": "Rex",
        "state": "in_stock",
        "born_on": "03.04.2021",
        "weight_grams": 12500,
        "labels": ["friendly", "house-trained"],
    }
    assert map_record(MINIMAL_PET) == {"external_id": "2", "name": "Mia", "state": "gone"}
    assert map_record({"id": 3, "name": "Kit", "status": "pending", "weight_kg": 1.005}) == {
        "external_id": "3",
        "name": "Kit",
        "state": "reserved",
        "weight_grams": 1005,
    }
    bad: list[Any] = [
        {"name": "No id", "status": "sold"},
        {"id": 0, "name": "Zero", "status": "sold"},
        {"id": True, "name": "Bool", "status": "sold"},
        {"id": "4", "name": "String id", "status": "sold"},
        {"id": 5, "name": "", "status": "sold"},
        {"id": 6, "status": "sold"},
        {"id": 7, "name": "Lost", "status": "lost"},
        {"id": 8, "name": "Date", "status": "sold", "birth_date": "03.04.2021"},
        {"id": 9, "name": "Date", "status": "sold", "birth_date": "2021-02-30"},
        {"id": 10, "name": "Heavy", "status": "sold", "weight_kg": "12"},
        {"id": 11, "name": "Tags", "status": "sold", "tags": ["friendly"]},
        {"id": 12, "name": "Tags", "status": "sold", "tags": "friendly"},
        ["not", "an", "object"],
    ]
    for record in bad:
        assert validate_record(record), record
    assert len(validate_record({"id": -1, "name": 3, "status": None})) == 3


def test_careful_healthy_provider_writes_valid_and_quarantines_invalid(tmp_path: Path) -> None:
    """(a) Every valid record arrives correctly mapped; the invalid one is set aside."""
    pets = make_pets(with_invalid=True)
    with FakePetstore(pets) as fake:
        result = run_variant("careful", fake, tmp_path, page_size=10)

    assert result.returncode == 0, result.stderr
    assert summary_of(result) == {"read": 120, "written": 119, "quarantined": 1, "pages": 12}
    assert alert_lines(result) == []
    assert set(fake.items) == {str(i) for i in range(1, PET_COUNT + 1)} - {str(INVALID_PET_ID)}
    assert fake.items["1"] == {
        "external_id": "1",
        "name": "Rex",
        "state": "in_stock",
        "born_on": "03.04.2021",
        "weight_grams": 12500,
        "labels": ["friendly", "house-trained"],
    }
    assert fake.items["2"] == {"external_id": "2", "name": "Mia", "state": "gone"}
    assert fake.items["45"] == {
        "external_id": "45",
        "name": "Pet 45",
        "state": "in_stock",
        "born_on": "18.10.2005",
        "weight_grams": 11250,
        "labels": ["tag-0"],
    }

    quarantined = (tmp_path / "out" / "quarantine.jsonl").read_text().splitlines()
    assert len(quarantined) == 1
    entry = json.loads(quarantined[0])
    assert entry["record"] == pets[INVALID_PET_ID - 1]
    assert any("status" in error for error in entry["errors"])
    assert f"quarantined record id={INVALID_PET_ID}" in result.stderr

    assert fake.token_requests == 1  # one cached token for the whole run
    assert max_requests_in_one_second(fake.provider_request_times) <= 8


def test_careful_rides_out_503_on_first_two_pages(tmp_path: Path) -> None:
    """(b) Two 503s are within the retry budget: the run completes without an alert."""
    with FakePetstore(make_pets(with_invalid=False), unavailable_first=2) as fake:
        result = run_variant("careful", fake, tmp_path)

    assert result.returncode == 0, result.stderr
    assert summary_of(result) == {"read": 120, "written": 120, "quarantined": 0, "pages": 6}
    assert len(fake.items) == PET_COUNT
    assert fake.pets_requests == 6 + 2
    assert "503" in result.stderr
    assert alert_lines(result) == []


def test_naive_fails_on_503_on_first_two_pages(tmp_path: Path) -> None:
    """(b) The naive variant reads the 503 problem document as a page and crashes."""
    with FakePetstore(make_pets(with_invalid=False), unavailable_first=2) as fake:
        result = run_variant("naive", fake, tmp_path)

    assert result.returncode != 0
    assert result.stdout.strip() == ""
    assert fake.items == {}


def test_careful_alerts_and_keeps_progress_when_provider_stays_down(tmp_path: Path) -> None:
    """Fail fast after bounded retries, with an ALERT; pages written before the outage stay."""
    with FakePetstore(make_pets(with_invalid=False), unavailable_from=3) as fake:
        result = run_variant("careful", fake, tmp_path)

    assert result.returncode == 1
    assert result.stdout.strip() == ""
    alerts = alert_lines(result)
    assert len(alerts) == 1
    assert alerts[0].startswith("ALERT service_availability: ")
    assert set(fake.items) == {str(i) for i in range(1, 41)}  # pages 1 and 2
    assert fake.pets_requests == 2 + 1 + 4  # two good pages, then one try and four retries


def test_careful_renews_expired_token_once_per_expiry(tmp_path: Path) -> None:
    """(c) Tokens expire after two pages: one new token per expiry, and the run completes."""
    with FakePetstore(make_pets(with_invalid=False), token_max_uses=2) as fake:
        result = run_variant("careful", fake, tmp_path)

    assert result.returncode == 0, result.stderr
    assert summary_of(result)["written"] == PET_COUNT
    assert fake.unauthorized == 2  # pages 3 and 5 each met an expired token once
    assert fake.token_requests == 1 + fake.unauthorized
    assert alert_lines(result) == []


def test_careful_gives_up_on_revoked_credentials(tmp_path: Path) -> None:
    """A rejected client secret is tried at most twice, then alerted, and nothing is written."""
    with FakePetstore(make_pets(with_invalid=False)) as fake:
        result = run_variant("careful", fake, tmp_path, client_secret="revoked-" + "x" * 16)

    assert result.returncode == 1
    assert alert_lines(result) == ["ALERT integration_failure: authentication failed"]
    assert fake.token_requests == 2
    assert fake.pets_requests == 0


@pytest.mark.parametrize("variant", ["careful", "naive"])
def test_secrets_never_printed_on_healthy_run(variant: str, tmp_path: Path) -> None:
    """(d) Both variants, healthy provider: same summary, and no secret in any output.

    ``run_variant`` checks every run of this module for the client secret, every issued token
    and the Authorization header; this test makes the requirement explicit for both variants.
    """
    with FakePetstore(make_pets(with_invalid=False)) as fake:
        result = run_variant(variant, fake, tmp_path, page_size=50)

    assert result.returncode == 0, result.stderr
    assert summary_of(result) == {"read": 120, "written": 120, "quarantined": 0, "pages": 3}
    assert fake.client_secret not in result.stdout + result.stderr
    assert fake.issued_tokens
    for token in fake.issued_tokens:
        assert token not in result.stdout + result.stderr
