"""The integration spec as typed, immutable data.

The JSON Schema in ``harness/schemas/integration-spec.schema.json`` is the single source of
truth for the format; these dataclasses mirror it field for field (a test keeps the two in step)
so the rest of the harness gets attribute access and type checking instead of dict lookups.
Optional parts are ``None`` when the spec leaves them out; defaults match the schema's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

IntegrationType = Literal["rest", "graphql", "webhook", "service"]
Effort = Literal["small", "medium", "large"]
AuthKind = Literal["oauth2_client_credentials", "api_key", "basic", "bearer", "custom", "none"]
TransformationKind = Literal["none", "date", "datetime", "enum", "convert", "function"]
DestinationKind = Literal["api", "jsonl", "csv", "sqlite"]


@dataclass(frozen=True)
class LiveProvider:
    base_url: str
    allowed_hosts: tuple[str, ...]
    allow_unsafe_methods: bool = False


@dataclass(frozen=True)
class Provider:
    name: str
    openapi: str
    documentation: str | None = None
    mode: Literal["simulated", "live"] = "simulated"
    live: LiveProvider | None = None


@dataclass(frozen=True)
class Authentication:
    kind: AuthKind
    token_operation: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    scopes: tuple[str, ...] | None = None
    token_ttl_seconds: float | None = None
    refresh_tokens: bool | None = None
    api_key: str | None = None
    key_in: Literal["header", "query"] | None = None
    key_name: str | None = None
    username: str | None = None
    password: str | None = None
    token: str | None = None
    description: str | None = None

    def credential_refs(self) -> dict[str, str]:
        """Every credential field that is set, by name: all of them are ``${VAR}`` references."""
        names = ("client_id", "client_secret", "api_key", "username", "password", "token")
        return {n: v for n in names if (v := getattr(self, n)) is not None}


@dataclass(frozen=True)
class RateLimits:
    requests_per_second: float | None = None
    requests_per_minute: float | None = None
    requests_per_hour: float | None = None
    burst: int | None = None
    per: Literal["client", "token", "ip"] = "client"
    operation_costs: dict[str, int] | None = None
    retry_after_format: Literal["seconds", "http-date"] = "seconds"
    headers: tuple[Literal["ietf", "x-ratelimit"], ...] | None = None

    @property
    def per_second(self) -> float:
        """The strictest declared limit, as requests per second."""
        rates = [
            r
            for r in (
                self.requests_per_second,
                None if self.requests_per_minute is None else self.requests_per_minute / 60,
                None if self.requests_per_hour is None else self.requests_per_hour / 3600,
            )
            if r is not None
        ]
        return min(rates)


@dataclass(frozen=True)
class Sla:
    uptime_percent: float | None = None
    description: str | None = None


@dataclass(frozen=True)
class UserStory:
    as_a: str
    i_want: str
    so_that: str


@dataclass(frozen=True)
class UseCases:
    primary: UserStory | None = None
    additional: tuple[str, ...] | None = None


@dataclass(frozen=True)
class DataFlow:
    source: str
    integration_layer: str
    destination: str


@dataclass(frozen=True)
class Destination:
    kind: DestinationKind
    name: str | None = None
    openapi: str | None = None
    operation: str | None = None
    path: str | None = None
    table: str | None = None


@dataclass(frozen=True)
class Transformation:
    kind: TransformationKind
    from_format: str | None = None
    to_format: str | None = None
    values: dict[str, str | int | bool] | None = None
    to_type: Literal["string", "integer", "number", "boolean"] | None = None
    factor: float | None = None
    function: str | None = None


@dataclass(frozen=True)
class MappingRow:
    source: str
    destination: str
    required: bool
    transformation: Transformation | None = None


@dataclass(frozen=True)
class DataMapping:
    source_operation: str
    fields: tuple[MappingRow, ...]
    records_path: str | None = None


@dataclass(frozen=True)
class ConnectionFailures:
    max_retries: int
    backoff: Literal["none", "constant", "linear", "exponential"]
    initial_delay_ms: float | None = None
    max_delay_ms: float | None = None
    jitter: Literal["none", "full", "equal"] = "none"


@dataclass(frozen=True)
class RateLimitHandling:
    honour_retry_after: bool
    client_requests_per_second: float | None = None
    max_retries: int | None = None


@dataclass(frozen=True)
class InvalidData:
    action: Literal["reject", "quarantine", "skip"]
    log: str | None = None


@dataclass(frozen=True)
class AuthenticationFailures:
    reauth: Literal["new_token", "refresh_token", "none"]
    max_attempts: int | None = None


@dataclass(frozen=True)
class ServiceUnavailable:
    strategy: Literal["fail_fast", "queue", "cached", "circuit_breaker"]
    max_retries: int | None = None
    circuit_open_seconds: float | None = None
    failure_threshold: int | None = None


@dataclass(frozen=True)
class RequestTimeout:
    seconds: float


@dataclass(frozen=True)
class ErrorHandling:
    connection_failures: ConnectionFailures | None = None
    rate_limit: RateLimitHandling | None = None
    invalid_data: InvalidData | None = None
    authentication_failures: AuthenticationFailures | None = None
    service_unavailable: ServiceUnavailable | None = None
    request_timeout: RequestTimeout | None = None


@dataclass(frozen=True)
class ResponseTime:
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True)
class Throughput:
    requests_per_second: float | None = None
    requests_per_minute: float | None = None
    requests_per_hour: float | None = None

    @property
    def per_second(self) -> float:
        if self.requests_per_second is not None:
            return self.requests_per_second
        if self.requests_per_minute is not None:
            return self.requests_per_minute / 60
        assert self.requests_per_hour is not None  # the schema requires exactly one
        return self.requests_per_hour / 3600


@dataclass(frozen=True)
class Performance:
    response_time: ResponseTime | None = None
    throughput: Throughput | None = None
    batch_size: int | None = None


@dataclass(frozen=True)
class Security:
    credentials_stored_securely: bool | None = None
    encryption_in_transit: bool | None = None
    encryption_at_rest: bool | None = None
    audit_logging: bool | None = None
    privacy_reviewed: bool | None = None
    rate_limiting: bool | None = None
    pii_fields: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MetricsChecklist:
    success_failure_rates: bool | None = None
    response_times: bool | None = None
    rate_limit_usage: bool | None = None
    data_sync_accuracy: bool | None = None
    error_frequencies: bool | None = None


@dataclass(frozen=True)
class AlertsChecklist:
    integration_failure: bool | None = None
    high_error_rate: bool | None = None
    rate_limit_threshold: bool | None = None
    service_availability: bool | None = None


@dataclass(frozen=True)
class AlertChannel:
    kind: Literal["webhook", "log_pattern"]
    path: str | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Monitoring:
    metrics: MetricsChecklist | None = None
    alerts: AlertsChecklist | None = None
    alert_channel: AlertChannel | None = None


@dataclass(frozen=True)
class UnitTests:
    data_transformation: bool | None = None
    error_handling: bool | None = None
    authentication_flows: bool | None = None


@dataclass(frozen=True)
class IntegrationTests:
    end_to_end: bool | None = None
    error_scenarios: bool | None = None
    rate_limiting: bool | None = None
    authentication_renewal: bool | None = None


@dataclass(frozen=True)
class PerformanceTests:
    load_testing: bool | None = None
    rate_limit_compliance: bool | None = None
    timeout_handling: bool | None = None


@dataclass(frozen=True)
class TestingStrategy:
    __test__ = False  # not a pytest test class, whatever its name says

    unit: UnitTests | None = None
    integration: IntegrationTests | None = None
    performance: PerformanceTests | None = None


@dataclass(frozen=True)
class Rollback:
    failure_scenarios: tuple[str, ...] | None = None
    steps: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Phases:
    development: str | None = None
    staging: str | None = None
    production: str | None = None


@dataclass(frozen=True)
class SuccessCriteria:
    records_synced: int | None = None
    max_error_rate_percent: float | None = None
    max_response_time_seconds: float | None = None
    max_data_loss_incidents: int | None = None


@dataclass(frozen=True)
class Launch:
    phases: Phases | None = None
    success_criteria: SuccessCriteria | None = None


@dataclass(frozen=True)
class Dependencies:
    credentials_obtained: bool | None = None
    firewall_rules_configured: bool | None = None
    database_schema_deployed: bool | None = None
    monitoring_setup_complete: bool | None = None


@dataclass(frozen=True)
class Documentation:
    integration_guide: bool | None = None
    troubleshooting_runbook: bool | None = None
    data_mapping_documentation: bool | None = None
    monitoring_dashboard: bool | None = None


@dataclass(frozen=True)
class Approval:
    role: str
    name: str | None = None
    date: str | None = None
    approved: bool = False


@dataclass(frozen=True)
class EnvNames:
    provider_url: str = "PROVIDER_URL"
    destination_url: str = "DESTINATION_URL"
    output_dir: str = "HARNESS_OUTPUT_DIR"


@dataclass(frozen=True)
class IntegrationUnderTest:
    command: str | tuple[str, ...] | None = None
    callable: str | None = None
    working_dir: str | None = None
    timeout_seconds: float = 120
    env: dict[str, str] | None = None
    env_names: EnvNames = field(default_factory=EnvNames)


LoadBasis = Literal["throughput", "rate_limit", "fixed", "unpaced"]
LoadJudge = Literal["latency", "errors", "throughput", "timeouts", "rate_limit", "degradation"]
LoadMetric = Literal[
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "max_ms",
    "error_rate_percent",
    "timeout_rate_percent",
    "rps",
    "requests",
    "status_429",
]


@dataclass(frozen=True)
class LoadOperation:
    """One operation of a load mix, with its share and any fixed parameter values."""

    operation: str
    weight: int = 1
    parameters: dict[str, str | int | bool] | None = None


@dataclass(frozen=True)
class LoadStage:
    """A part of a profile's run (the rate-limit profile: under the limit, then over it)."""

    name: str
    share: float = 1
    client_limiter: bool = False
    expect_429: bool = False


@dataclass(frozen=True)
class SlowResponses:
    share: float
    latency_factor: float = 1.5


@dataclass(frozen=True)
class LoadProfile:
    """A load profile as data; unset fields come from the profile it extends."""

    name: str
    extends: str | None = None
    description: str | None = None
    duration_seconds: float | None = None
    users: int | None = None
    basis: LoadBasis | None = None
    factor: float | None = None
    rps: float | None = None
    max_rps: float | None = None
    stages: tuple[LoadStage, ...] | None = None
    provider_rate_limit: Literal["declared", "unlimited"] | None = None
    faults: str | None = None
    slow_responses: SlowResponses | None = None
    timeout_seconds: float | None = None
    judge: tuple[LoadJudge, ...] | None = None
    degradation_factor: float | None = None
    locustfile: str | None = None


@dataclass(frozen=True)
class LoadThreshold:
    metric: LoadMetric
    operation: str | None = None
    profile: str | None = None
    max: float | None = None
    min: float | None = None


@dataclass(frozen=True)
class LoadIntegration:
    url: str
    openapi: str
    operations: tuple[LoadOperation, ...]


@dataclass(frozen=True)
class Load:
    """The load stage's own settings (``harness load``): mix, profiles, extra thresholds."""

    operations: tuple[LoadOperation, ...] | None = None
    peak_factor: float = 2
    profiles: tuple[LoadProfile, ...] | None = None
    profiles_dir: str | None = None
    thresholds: tuple[LoadThreshold, ...] | None = None
    integration: LoadIntegration | None = None


GenerationMode = Literal["positive", "negative"]


@dataclass(frozen=True)
class ContractCheckRule:
    """Checks of the contract stage switched off for some operations (all when ``None``), and why."""

    exclude: tuple[str, ...]
    reason: str
    operations: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Contract:
    """How the contract stage tests the provider's document (``harness contract``)."""

    max_examples: int | None = None
    generation: tuple[GenerationMode, ...] | None = None
    stateful: bool = True
    checks: tuple[ContractCheckRule, ...] | None = None


@dataclass(frozen=True)
class IntegrationSpec:
    """One integration, as its team describes it: the root of everything the harness does."""

    spec_version: int
    name: str
    integration_type: IntegrationType
    provider: Provider
    date: str | None = None
    author: str | None = None
    effort: Effort | None = None
    authentication: Authentication | None = None
    rate_limits: RateLimits | None = None
    sla: Sla | None = None
    business_justification: str | None = None
    use_cases: UseCases | None = None
    data_flow: DataFlow | None = None
    destination: Destination | None = None
    data_mapping: DataMapping | None = None
    error_handling: ErrorHandling | None = None
    performance: Performance | None = None
    security: Security | None = None
    monitoring: Monitoring | None = None
    testing_strategy: TestingStrategy | None = None
    rollback: Rollback | None = None
    launch: Launch | None = None
    dependencies: Dependencies | None = None
    documentation: Documentation | None = None
    approvals: tuple[Approval, ...] | None = None
    integration_under_test: IntegrationUnderTest | None = None
    contract: Contract | None = None
    load: Load | None = None
