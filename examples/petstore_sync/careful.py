"""The Petstore sync written the way a careful team would write it.

Run as ``python -m petstore_sync.careful`` from ``examples/``. It implements the
``error_handling`` policy of ``contracts/petstore/integration.yaml`` so that the harness has a
well-behaved integration to demonstrate passing scenarios on:

* connection failures: 4 retries, exponential backoff with full jitter (100 ms initial, 2 s cap);
* 429: wait at least ``Retry-After`` seconds, up to 5 retries;
* 500/502/503/504: 4 retries with the same backoff, then fail fast with an
  ``ALERT service_availability:`` line and exit code 1 (what was written stays written);
* authentication: one cached token, one re-authentication on 401, at most 2 attempts when the
  token endpoint rejects the credentials, then ``ALERT integration_failure:``;
* at most 8 requests per second to the provider (spaced 135 ms apart) and a 5 s timeout on
  every request;
* invalid records are quarantined to ``$HARNESS_OUTPUT_DIR/quarantine.jsonl``, never written.

Configuration comes only from the environment (see ``Config.from_env``). Secrets (the client
secret, access and refresh tokens, the Authorization header) are never printed: nothing here
formats them, and a logging filter redacts them in case a library ever does.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx
import tenacity
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from petstore_sync.mapping import map_record, validate_record

log = logging.getLogger("petstore_sync.careful")

T = TypeVar("T")

# --- The policy, copied from integration.yaml's error_handling so a reviewer can diff the two. ---
CONNECTION_MAX_RETRIES = 4  # connection_failures.max_retries
BACKOFF_INITIAL_SECONDS = 0.1  # connection_failures.initial_delay_ms
BACKOFF_MAX_SECONDS = 2.0  # connection_failures.max_delay_ms
RATE_LIMIT_MAX_RETRIES = 5  # rate_limit.max_retries
CLIENT_REQUESTS_PER_SECOND = 8  # rate_limit.client_requests_per_second
AUTH_MAX_ATTEMPTS = 2  # authentication_failures.max_attempts
SERVICE_UNAVAILABLE_MAX_RETRIES = 4  # service_unavailable.max_retries
REQUEST_TIMEOUT_SECONDS = 5.0  # request_timeout.seconds
QUARANTINE_FILE = "quarantine.jsonl"  # invalid_data.log

#: Extra spacing per provider request so that server-side jitter cannot push nine requests into
#: one second (8 intervals of 135 ms span 1.08 s); costs 10 ms per page.
RATE_LIMIT_MARGIN_SECONDS = 0.01

#: Statuses that mean "the service is (temporarily) not there", retried then alerted on.
UNAVAILABLE_STATUSES = frozenset({500, 502, 503, 504})

#: Transport failures worth retrying. The policy names connect/read/write errors, broken
#: responses and read timeouts; connect/write/pool timeouts are the same failure seen from a
#: different phase, and every request we send is safe to repeat (GET, idempotent PUT, and a token
#: request whose only side effect is an unused token).
CONNECTION_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.ReadError,
    httpx.ReadTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
    httpx.PoolTimeout,
    httpx.RemoteProtocolError,
)

#: Renew a cached token this long before it expires (capped), so a token never expires in flight.
TOKEN_EXPIRY_MARGIN_FRACTION = 0.1
TOKEN_EXPIRY_MARGIN_MAX_SECONDS = 30.0


# --- Failures. Retryable ones are retried by tenacity; the rest end the run with an ALERT. ---


class ServiceUnavailable(Exception):
    """A 5xx answer: retried a bounded number of times, then alerted as service_availability."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(f"{what} answered {status}")
        self.status = status


class RateLimited(Exception):
    """A 429 answer; ``retry_after`` is the server's requested pause in seconds, if it gave one."""

    def __init__(self, what: str, retry_after: float | None) -> None:
        super().__init__(f"{what} answered 429 (Retry-After: {retry_after})")
        self.retry_after = retry_after


class MalformedResponse(Exception):
    """A success status with a body we cannot use; retried like a transient failure."""


class TokenRejected(Exception):
    """The API answered 401 to our access token: get a new token once and try again."""


class CredentialsRejected(Exception):
    """The token endpoint answered 400/401: credentials revoked or wrong."""


class Unreachable(Exception):
    """Connection failures outlasted the retries; carries which request failed."""


class UnexpectedStatus(Exception):
    """A status the policy has no rule for (403, 404, ...): retrying would not help."""


class ConfigError(Exception):
    """The environment does not describe a runnable sync."""


# --- Configuration. ---


@dataclass(frozen=True)
class Config:
    """Everything the job needs, read from the environment only (no files, no flags), because
    the harness starts the job as a subprocess and injects URLs and credentials per scenario."""

    provider_url: str
    destination_url: str
    client_id: str
    client_secret: str
    output_dir: Path
    page_size: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Config:
        """Build a Config, naming every missing variable at once so one rerun is enough."""
        required = (
            "PROVIDER_URL",
            "DESTINATION_URL",
            "PETSTORE_CLIENT_ID",
            "PETSTORE_CLIENT_SECRET",
        )
        missing = [name for name in required if not environ.get(name)]
        if missing:
            raise ConfigError(f"missing environment variables: {', '.join(missing)}")
        raw_page_size = environ.get("PETSTORE_PAGE_SIZE", "50")
        try:
            page_size = int(raw_page_size)
        except ValueError:
            raise ConfigError(
                f"PETSTORE_PAGE_SIZE must be an integer, got {raw_page_size!r}"
            ) from None
        if not 1 <= page_size <= 100:  # the provider's per_page bounds
            raise ConfigError(f"PETSTORE_PAGE_SIZE must be between 1 and 100, got {page_size}")
        return cls(
            provider_url=environ["PROVIDER_URL"].rstrip("/"),
            destination_url=environ["DESTINATION_URL"].rstrip("/"),
            client_id=environ["PETSTORE_CLIENT_ID"],
            client_secret=environ["PETSTORE_CLIENT_SECRET"],
            output_dir=Path(environ.get("HARNESS_OUTPUT_DIR") or "."),
            page_size=page_size,
        )


# --- Secret hygiene. ---


class Redactor(logging.Filter):
    """Replaces known secret values in log records.

    Defence in depth: this module never formats a secret, but httpx, tenacity or an exception
    message might one day include a header or form body, and a leaked token in a CI log is an
    incident. Tokens are registered as they are issued.
    """

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str | None) -> None:
        """Remember a value that must never appear in output."""
        if secret:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        """Return ``text`` with every known secret replaced by ``***``."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Render the message once, redact it, and freeze it so handlers cannot re-render it."""
        record.msg = self.redact(record.getMessage())
        record.args = None
        if record.exc_info:
            # Tracebacks are not needed to diagnose the failures we log; drop them rather than
            # risk a secret in a local variable's repr.
            record.exc_info = None
            record.exc_text = None
        return True


# --- Rate limiting. ---


class MinimumInterval:
    """Client-side rate limit: at least ``1/per_second + margin`` seconds between requests.

    An even spacing (rather than a bucket that allows bursts) keeps *any* one-second window at
    ``per_second`` requests or fewer, which is what the provider's limit and the harness's
    rate-limit compliance check measure. The margin matters because they measure arrival times
    at the server: with exact 125 ms spacing, nine requests span exactly one second on our side,
    and a few milliseconds of network or scheduling jitter put all nine into one window there.
    Retries go through the limiter too.
    """

    def __init__(
        self,
        per_second: float,
        margin_seconds: float = RATE_LIMIT_MARGIN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / per_second + margin_seconds
        self._clock = clock
        self._sleep = sleep
        self._next_allowed = float("-inf")

    def wait(self) -> None:
        """Block until the next request may be sent, then reserve that slot."""
        now = self._clock()
        if now < self._next_allowed:
            self._sleep(self._next_allowed - now)
            now = self._clock()
        self._next_allowed = max(now, self._next_allowed) + self._interval


# --- Retry policy, built from tenacity primitives. ---


class StopPerFailureKind(stop_base):
    """Give each kind of failure its own attempt budget from the policy.

    tenacity's ``stop_after_attempt`` counts all attempts of one call; the policy has different
    budgets for 429 (5 retries), rejected credentials (2 attempts) and everything else (4
    retries). The budget of the failure that just happened decides, so a call is always bounded
    by the largest budget.
    """

    def __init__(self) -> None:
        self._rate_limited = tenacity.stop_after_attempt(1 + RATE_LIMIT_MAX_RETRIES)
        self._credentials = tenacity.stop_after_attempt(AUTH_MAX_ATTEMPTS)
        self._unavailable = tenacity.stop_after_attempt(1 + SERVICE_UNAVAILABLE_MAX_RETRIES)
        self._connection = tenacity.stop_after_attempt(1 + CONNECTION_MAX_RETRIES)

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        error = _failure(retry_state)
        if isinstance(error, RateLimited):
            return self._rate_limited(retry_state)
        if isinstance(error, CredentialsRejected):
            return self._credentials(retry_state)
        if isinstance(error, ServiceUnavailable | MalformedResponse):
            return self._unavailable(retry_state)
        return self._connection(retry_state)


class WaitHonouringRetryAfter(wait_base):
    """Full-jitter exponential backoff, but never shorter than a 429's ``Retry-After``.

    Waiting ``max(Retry-After, backoff)`` respects the server's request while keeping jitter, so
    many clients released by the same Retry-After do not return in lockstep.
    """

    def __init__(self) -> None:
        self._backoff = tenacity.wait_random_exponential(
            multiplier=BACKOFF_INITIAL_SECONDS, max=BACKOFF_MAX_SECONDS
        )

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        delay = float(self._backoff(retry_state))
        error = _failure(retry_state)
        if isinstance(error, RateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay


def _failure(retry_state: tenacity.RetryCallState) -> BaseException | None:
    """The exception the last attempt raised, if any."""
    outcome = retry_state.outcome
    return outcome.exception() if outcome is not None and outcome.failed else None


def _log_before_retry(what: str) -> Callable[[tenacity.RetryCallState], None]:
    """Log each retry with its cause and pause, so a slow run explains itself on stderr."""

    def before_sleep(retry_state: tenacity.RetryCallState) -> None:
        error = _failure(retry_state)
        pause = retry_state.next_action.sleep if retry_state.next_action else 0.0
        # Our own exceptions already name the request; transport errors do not (and their text
        # is left out on purpose: it is library-formatted and adds nothing to the type name).
        if isinstance(error, httpx.TransportError):
            cause = f"{what}: {type(error).__name__}"
        else:
            cause = str(error)
        log.warning("%s (attempt %d); retrying in %.2fs", cause, retry_state.attempt_number, pause)

    return before_sleep


def call_with_retries(
    what: str,
    attempt: Callable[[], T],
    *,
    also_retry: tuple[type[BaseException], ...] = (),
) -> T:
    """Run ``attempt`` under the transient-failure policy.

    Retries connection failures, 5xx, 429 and malformed bodies (plus ``also_retry``); anything
    else propagates at once. When retries run out the last exception is re-raised, except that
    connection failures become ``Unreachable`` so the alert can say which request failed.
    """
    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(
            (*CONNECTION_ERRORS, ServiceUnavailable, RateLimited, MalformedResponse, *also_retry)
        ),
        wait=WaitHonouringRetryAfter(),
        stop=StopPerFailureKind(),
        before_sleep=_log_before_retry(what),
        reraise=True,
    )
    try:
        return retrying(attempt)
    except CONNECTION_ERRORS as error:
        raise Unreachable(
            f"{what} failed after {CONNECTION_MAX_RETRIES} retries: {type(error).__name__}"
        ) from error


def raise_for_transient(response: httpx.Response, what: str) -> None:
    """Turn the statuses the policy retries into exceptions tenacity can match on."""
    if response.status_code == 429:
        raise RateLimited(what, parse_retry_after(response.headers.get("Retry-After")))
    if response.status_code in UNAVAILABLE_STATUSES:
        raise ServiceUnavailable(what, response.status_code)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (the spec says ``retry_after_format: seconds``).

    An unparsable or negative value is ignored (None) rather than fatal: the backoff still
    applies, which is the best we can do with a header we cannot read.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        log.warning("ignoring unparsable Retry-After header %r", value)
        return None
    return seconds if seconds >= 0 else None


def _problem_title(response: httpx.Response) -> str:
    """A short, safe description of an error response for logs (title of a problem document)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict) and isinstance(body.get("title"), str):
        return f" ({body['title'][:200]})"
    return ""


# --- The provider. ---


@dataclass
class _Token:
    """A cached access token and the monotonic time after which we stop using it."""

    value: str
    use_until: float


class Provider:
    """The Petstore API: token handling, rate limiting and page fetching."""

    def __init__(
        self,
        config: Config,
        client: httpx.Client,
        limiter: MinimumInterval,
        redactor: Redactor,
    ) -> None:
        self._config = config
        self._client = client
        self._limiter = limiter
        self._redactor = redactor
        self._token: _Token | None = None
        self.tokens_fetched = 0

    # Tokens -----------------------------------------------------------------------------------

    def _access_token(self) -> str:
        """The cached token, fetching a new one only when none is cached or it is about to
        expire: fetching per request would hammer the token endpoint and its rate limit."""
        if self._token is None or time.monotonic() >= self._token.use_until:
            self._token = call_with_retries(
                "POST /oauth/token", self._request_token, also_retry=(CredentialsRejected,)
            )
        return self._token.value

    def _forget_token(self, value: str) -> None:
        """Drop the cached token after the API rejected it (unless it was already replaced)."""
        if self._token is not None and self._token.value == value:
            self._token = None

    def _request_token(self) -> _Token:
        """One client-credentials token request (form-encoded, as the provider requires)."""
        self._limiter.wait()
        response = self._client.post(
            f"{self._config.provider_url}/oauth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": self._config.client_id,
                "client_secret": self._config.client_secret,
            },
        )
        what = "POST /oauth/token"
        raise_for_transient(response, what)
        if response.status_code in (400, 401):
            # Deliberately no response body in the message: a token endpoint may echo the request.
            raise CredentialsRejected(f"{what} answered {response.status_code}")
        if response.status_code != 200:
            raise UnexpectedStatus(f"{what} answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise MalformedResponse(f"{what} answered 200 with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise MalformedResponse(f"{what} answered 200 with a body that is not an object")
        access_token = body.get("access_token")
        expires_in = body.get("expires_in")
        token_type = body.get("token_type")
        # Register secrets before any check can fail and mention them.
        self._redactor.add(access_token if isinstance(access_token, str) else None)
        refresh_token = body.get("refresh_token")
        self._redactor.add(refresh_token if isinstance(refresh_token, str) else None)
        if not isinstance(access_token, str) or not access_token:
            raise MalformedResponse(f"{what} answered 200 without an access_token")
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise MalformedResponse(f"{what} answered 200 with token_type {token_type!r}")
        if (
            isinstance(expires_in, bool)
            or not isinstance(expires_in, int | float)
            or expires_in <= 0
        ):
            raise MalformedResponse(f"{what} answered 200 with expires_in {expires_in!r}")
        margin = min(TOKEN_EXPIRY_MARGIN_MAX_SECONDS, expires_in * TOKEN_EXPIRY_MARGIN_FRACTION)
        self.tokens_fetched += 1
        log.info("obtained access token (expires in %ss)", expires_in)
        return _Token(value=access_token, use_until=time.monotonic() + expires_in - margin)

    # Pages ------------------------------------------------------------------------------------

    def get_page(self, page: int) -> tuple[list[Any], int | None]:
        """Fetch one page: (records, next page number or None on the last page).

        The outer tenacity loop is the re-authentication rule (a 401 earns exactly one new token
        and one more try); the inner one, in ``call_with_retries``, is the transient policy.
        """
        what = f"GET /pets page={page}"

        def with_current_token() -> tuple[list[Any], int | None]:
            token = self._access_token()
            return call_with_retries(what, lambda: self._get_page_once(what, token, page))

        reauthenticating = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(TokenRejected),
            stop=tenacity.stop_after_attempt(AUTH_MAX_ATTEMPTS),
            wait=tenacity.wait_none(),
            before_sleep=lambda _state: log.info("%s: token rejected, fetching a new one", what),
            reraise=True,
        )
        return reauthenticating(with_current_token)

    def _get_page_once(self, what: str, token: str, page: int) -> tuple[list[Any], int | None]:
        """One GET /pets attempt, classified into success or one of the policy's failures."""
        self._limiter.wait()
        response = self._client.get(
            f"{self._config.provider_url}/pets",
            params={"page": page, "per_page": self._config.page_size},
            headers={"Authorization": f"Bearer {token}"},
        )
        raise_for_transient(response, what)
        if response.status_code == 401:
            self._forget_token(token)
            challenge = response.headers.get("WWW-Authenticate", "")
            raise TokenRejected(f"{what} answered 401 {challenge[:200]}".rstrip())
        if response.status_code != 200:
            raise UnexpectedStatus(
                f"{what} answered {response.status_code}{_problem_title(response)}"
            )
        return parse_page(response, what, page)


def parse_page(response: httpx.Response, what: str, page: int) -> tuple[list[Any], int | None]:
    """Check that a 200 page is really a page before a single record is used.

    An error document delivered with status 200 (problem+json, an HTML error page, truncated
    JSON) must never be mistaken for data, or it would end up in the destination.
    """
    content_type = response.headers.get("Content-Type", "")
    if "problem+json" in content_type:
        raise MalformedResponse(f"{what} answered 200 with a problem document")
    try:
        body = response.json()
    except ValueError:
        raise MalformedResponse(f"{what} answered 200 with a body that is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise MalformedResponse(f"{what} answered 200 without an items list")
    records: list[Any] = body["items"]
    if "next_page" in body:
        next_page = body["next_page"]
    else:  # next_page is optional in the contract; fall back on the totals.
        total, per_page = body.get("total"), body.get("per_page")
        has_more = isinstance(total, int) and isinstance(per_page, int) and page * per_page < total
        next_page = page + 1 if has_more else None
    if next_page is not None and (
        isinstance(next_page, bool) or not isinstance(next_page, int) or next_page <= page
    ):
        # A next_page that does not move forward would loop forever.
        raise MalformedResponse(f"{what} answered 200 with next_page {next_page!r}")
    return records, next_page


# --- The destination. ---


class Destination:
    """The inventory API: idempotent upserts keyed by external id."""

    def __init__(self, config: Config, client: httpx.Client) -> None:
        self._base_url = config.destination_url
        self._client = client

    def put(self, item: Mapping[str, Any]) -> str | None:
        """Upsert one item; None on success, or the destination's reason for rejecting it.

        PUT is idempotent, so retrying after a timeout cannot create a duplicate.
        """
        external_id = item["external_id"]
        what = f"PUT /items/{external_id}"

        def attempt() -> str | None:
            response = self._client.put(f"{self._base_url}/items/{external_id}", json=item)
            raise_for_transient(response, what)
            if response.status_code in (200, 201, 204):
                return None
            if response.status_code == 422:
                return f"destination rejected item: 422{_problem_title(response)}"
            raise UnexpectedStatus(
                f"{what} answered {response.status_code}{_problem_title(response)}"
            )

        return call_with_retries(what, attempt)


# --- Quarantine. ---


class Quarantine:
    """Appends invalid records, with their reasons, to ``quarantine.jsonl``.

    Opened lazily (a clean run leaves no file) and flushed per record, so a crash later in the
    run cannot lose what was already set aside.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None

    def add(self, record: object, errors: list[str]) -> None:
        """Record one rejected record and log why."""
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps({"record": record, "errors": errors}) + "\n")
        self._file.flush()
        record_id = record.get("id") if isinstance(record, dict) else None
        log.warning("quarantined record id=%s: %s", record_id, "; ".join(errors))

    def close(self) -> None:
        """Close the file if one was opened."""
        if self._file is not None:
            self._file.close()
            self._file = None


# --- The job. ---


@dataclass
class Summary:
    """Counts for the final stdout line the harness parses."""

    read: int = 0
    written: int = 0
    quarantined: int = 0
    pages: int = 0

    def as_json(self) -> str:
        """The one-line JSON summary printed on success."""
        return json.dumps(
            {
                "read": self.read,
                "written": self.written,
                "quarantined": self.quarantined,
                "pages": self.pages,
            }
        )


def sync(
    provider: Provider, destination: Destination, quarantine: Quarantine, summary: Summary
) -> None:
    """Copy every page, writing each page's valid records before fetching the next.

    Writing page by page means that when a later page fails, everything before it is already in
    the destination (PUT is idempotent, so the next run simply repeats it harmlessly).
    """
    page: int | None = 1
    while page is not None:
        records, next_page = provider.get_page(page)
        summary.pages += 1
        written_before, quarantined_before = summary.written, summary.quarantined
        for record in records:
            summary.read += 1
            errors = validate_record(record)
            if errors:
                quarantine.add(record, errors)
                summary.quarantined += 1
                continue
            rejection = destination.put(map_record(record))
            if rejection is None:
                summary.written += 1
            else:
                quarantine.add(record, [rejection])
                summary.quarantined += 1
        log.info(
            "page %d: %d records, %d written, %d quarantined",
            page,
            len(records),
            summary.written - written_before,
            summary.quarantined - quarantined_before,
        )
        page = next_page


def alert(kind: str, message: str, redactor: Redactor) -> None:
    """Emit an alert on stderr in the spec's ``log_pattern`` channel ("ALERT ")."""
    print(f"ALERT {kind}: {redactor.redact(message)}", file=sys.stderr, flush=True)


def _configure_logging(redactor: Redactor) -> None:
    """stderr logging with the redaction filter on the handler (handler filters see records
    from every logger, logger filters only their own)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(redactor)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    # httpx logs every request at INFO; the page-level progress lines are enough.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


def main(environ: Mapping[str, str] | None = None) -> int:
    """Run one sync; 0 on success (summary on stdout), 1 after an ALERT, 2 on bad config."""
    redactor = Redactor()
    _configure_logging(redactor)
    try:
        config = Config.from_env(os.environ if environ is None else environ)
    except ConfigError as error:
        log.error("configuration error: %s", error)
        return 2
    redactor.add(config.client_secret)

    config.output_dir.mkdir(parents=True, exist_ok=True)
    quarantine = Quarantine(config.output_dir / QUARANTINE_FILE)
    summary = Summary()
    timeout = httpx.Timeout(REQUEST_TIMEOUT_SECONDS)
    log.info(
        "sync starting: provider=%s destination=%s page_size=%d",
        config.provider_url,
        config.destination_url,
        config.page_size,
    )
    try:
        with (
            httpx.Client(timeout=timeout) as provider_client,
            httpx.Client(timeout=timeout) as destination_client,
        ):
            provider = Provider(
                config, provider_client, MinimumInterval(CLIENT_REQUESTS_PER_SECOND), redactor
            )
            sync(provider, Destination(config, destination_client), quarantine, summary)
    except (CredentialsRejected, TokenRejected) as error:
        log.error("%s", error)
        alert("integration_failure", "authentication failed", redactor)
    except ServiceUnavailable as error:
        alert("service_availability", f"{error}; still failing after retries", redactor)
    except Unreachable as error:
        alert("service_availability", str(error), redactor)
    except RateLimited as error:
        alert("integration_failure", f"{error}; still rate limited after retries", redactor)
    except (MalformedResponse, UnexpectedStatus) as error:
        alert("integration_failure", str(error), redactor)
    except Exception as error:  # a bug or a failure the policy did not foresee: still alert
        alert("integration_failure", f"unexpected {type(error).__name__}: {error}", redactor)
    else:
        print(summary.as_json(), flush=True)
        log.info("sync finished: %s", summary.as_json())
        return 0
    finally:
        quarantine.close()
    log.error(
        "sync stopped early; kept what was done: read=%d written=%d quarantined=%d pages=%d",
        summary.read,
        summary.written,
        summary.quarantined,
        summary.pages,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
