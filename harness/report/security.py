"""Security & compliance checks the harness can judge on its own, for the report's section.

Three automated items (everything else in the template's security list is the team's word):

* **secrets redaction scan** - every file of the run's output folder (and the results about to
  be written) is searched for every secret value the spec resolves from the environment, in
  each form the redactor scrubs (raw, URL-encoded, JSON-escaped, base64 at any alignment), plus
  tokens the simulator issued (``hsim_...``) and credentials it minted (``sim-client-secret-...``)
  which exist only at run time. Files are read in chunks, so a 1 GB traffic log costs no memory.
  A hit is reported by variable name, form, file and line, never by value.
* **TLS on live targets** - the spec's live ``base_url`` must be ``https``.
* **credentials only from the environment** - every credential field is a ``${VAR}`` reference,
  and no credential-looking variable handed to the integration is a literal.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, quote_plus, urlsplit

from harness.redact import (
    MIN_SECRET_LENGTH,
    REDACTED,
    SIMULATED_TOKEN_PREFIX,
    Redactor,
    secret_forms,
)
from harness.results.model import ChecklistItem
from harness.spec.model import IntegrationSpec
from harness.spec.secrets import env_name, looks_like_credential_name, resolve_secrets

SECTION = "Security & Compliance"

CHUNK_BYTES = 8 * 1024 * 1024
"""How much of a file is searched at once; memory stays at about twice this per file."""

MIN_BASE64_CORE = 8
"""Base64 cores shorter than this are not searched: a 4-character core matches by chance in
any large base64 or minified text (the embedded charting library), which would cry wolf."""

# Values the provider engine makes up at run time: issued tokens (redact.SIMULATED_TOKEN_PREFIX)
# and credentials minted for unset variables (provider/api.py: "sim-<field>-<16 hex>").
_RUNTIME_SECRETS: tuple[tuple[str, re.Pattern[bytes]], ...] = (
    (
        "a token issued by the simulator",
        re.compile(re.escape(SIMULATED_TOKEN_PREFIX.encode()) + rb"[A-Za-z0-9_-]{8,}"),
    ),
    (
        "a credential minted by the simulator",
        re.compile(
            rb"sim-(?:client-id|client-secret|api-key|username|password|token)-[0-9a-f]{16}"
        ),
    ),
)


_MINTED_TEXT = re.compile(_RUNTIME_SECRETS[1][1].pattern.decode("ascii"))


@dataclass(frozen=True)
class Leak:
    """Where a secret showed up: by variable name and form, never by value."""

    file: str
    line: int
    secret: str
    """The environment variable's name, or what kind of run-time secret it was."""
    form: str


@dataclass(frozen=True)
class ScanResult:
    files: int
    bytes: int
    secrets: int
    """How many secret values were searched for (run-time patterns not counted)."""
    leaks: tuple[Leak, ...]


def _labelled_forms(secret: str) -> dict[bytes, str]:
    """Each searchable form of ``secret`` -> a human label of the encoding."""
    labels: dict[bytes, str] = {}
    plain = {
        secret: "raw",
        quote(secret, safe=""): "URL-encoded",
        quote(secret): "URL-encoded",
        quote_plus(secret): "URL-encoded",
        json.dumps(secret)[1:-1]: "JSON-escaped",
        json.dumps(secret, ensure_ascii=False)[1:-1]: "JSON-escaped",
    }
    for form in secret_forms(secret):
        label = plain.get(form, "base64")
        if label == "base64" and len(form) < MIN_BASE64_CORE:
            continue  # too short to tell from any other base64 text
        labels.setdefault(form.encode("utf-8"), label)
    # The raw form wins when two encodings coincide (most secrets need no escaping).
    labels[secret.encode("utf-8")] = "raw"
    return labels


def _files(root: Path) -> Iterable[Path]:
    for folder, dirs, names in os.walk(root, followlinks=False):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_file() and not path.is_symlink():
                yield path


class _Scanner:
    def __init__(self, secrets: Mapping[str, str]) -> None:
        self.forms: list[tuple[bytes, str, str]] = []
        for variable, value in sorted(secrets.items()):
            if len(value) < MIN_SECRET_LENGTH:
                continue
            for form, label in _labelled_forms(value).items():
                self.forms.append((form, variable, label))
        self.overlap = max((len(f) for f, _, _ in self.forms), default=0) + 64

    def scan_bytes(self, name: str, chunks: Iterable[bytes], found: list[Leak]) -> int:
        """Search a stream of chunks (with overlap kept between them); returns bytes read."""
        seen: set[tuple[str, str]] = set()
        tail = b""
        lines_before = 0  # newlines in the data before ``tail``
        total = 0
        for chunk in chunks:
            total += len(chunk)
            data = tail + chunk
            for form, variable, label in self.forms:
                at = data.find(form)
                if at >= 0 and (variable, label) not in seen:
                    seen.add((variable, label))
                    line = lines_before + data.count(b"\n", 0, at) + 1
                    found.append(Leak(name, line, variable, label))
            for kind, pattern in _RUNTIME_SECRETS:
                match = pattern.search(data)
                if match is not None and (kind, "raw") not in seen:
                    seen.add((kind, "raw"))
                    line = lines_before + data.count(b"\n", 0, match.start()) + 1
                    found.append(Leak(name, line, kind, "raw"))
            keep = min(len(data), self.overlap)
            lines_before += data.count(b"\n", 0, len(data) - keep)
            tail = data[len(data) - keep :]
        return total


def _read_chunks(path: Path) -> Iterable[bytes]:
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            yield chunk


def scan_for_secrets(
    root: Path | None,
    secrets: Mapping[str, str],
    *,
    extra_texts: Mapping[str, str] | None = None,
) -> ScanResult:
    """Search every file under ``root`` (and each of ``extra_texts``: name -> content about to
    be written) for the ``secrets`` (variable name -> value) and the simulator's run-time
    secrets. Each (file, secret, form) is reported once, at its first line."""
    scanner = _Scanner(secrets)
    leaks: list[Leak] = []
    files = 0
    size = 0
    if root is not None and root.is_dir():
        for path in _files(root):
            files += 1
            name = path.relative_to(root).as_posix()
            try:
                size += scanner.scan_bytes(name, _read_chunks(path), leaks)
            except OSError as error:
                leaks.append(Leak(name, 0, f"unreadable file ({error.strerror})", "unknown"))
    for name, text in (extra_texts or {}).items():
        files += 1
        size += scanner.scan_bytes(name, [text.encode("utf-8")], leaks)
    return ScanResult(files, size, len(secrets), tuple(leaks))


def _redaction_item(scan: ScanResult | None) -> ChecklistItem:
    item_id = "security.secrets_redaction"
    label = "No secret value in any file of the run (redaction scan)"
    if scan is None:
        return ChecklistItem(item_id, SECTION, label, "not-run", "no output folder was scanned")
    searched = (
        f"the {scan.secrets} credential value(s) set in the environment"
        if scan.secrets
        else "credentials (none is set in the environment)"
    )
    scope = f"scanned {scan.files} file(s), {scan.bytes / 1e6:.1f} MB, for {searched} and for tokens/credentials the simulator issued"
    if not scan.leaks:
        return ChecklistItem(item_id, SECTION, label, "automated-pass", f"{scope}: none found")
    shown = "; ".join(
        f"{leak.secret} ({leak.form}) in {leak.file} line {leak.line}" for leak in scan.leaks[:10]
    )
    more = f"; and {len(scan.leaks) - 10} more" if len(scan.leaks) > 10 else ""
    return ChecklistItem(
        item_id, SECTION, label, "automated-fail", f"leaked: {shown}{more} ({scope})"
    )


def tls_item(spec: IntegrationSpec) -> ChecklistItem:
    """``security.encryption_in_transit``: the live target, when the spec names one, is https."""
    item_id = "security.encryption_in_transit"
    label = "Data encryption in transit (TLS on live targets)"
    declared = _declared(spec.security.encryption_in_transit if spec.security else None)
    live = spec.provider.live
    if live is None:
        return ChecklistItem(
            item_id,
            SECTION,
            label,
            "not-run" if spec.provider.mode == "simulated" else "automated-fail",
            f"no live target in the spec (provider mode: {spec.provider.mode}); {declared}",
        )
    scheme = urlsplit(live.base_url).scheme.lower()
    where = f"provider.live.base_url {live.base_url}"
    if scheme == "https":
        return ChecklistItem(
            item_id, SECTION, label, "automated-pass", f"{where} uses TLS; {declared}"
        )
    return ChecklistItem(
        item_id,
        SECTION,
        label,
        "automated-fail",
        f"{where} is plain {scheme or 'text'}: credentials and data would cross the network unencrypted; {declared}",
    )


def credentials_item(
    spec: IntegrationSpec, environ: Mapping[str, str] | None = None
) -> ChecklistItem:
    """``security.credentials_stored_securely``: credentials come only from ``${VAR}`` references."""
    item_id = "security.credentials_stored_securely"
    label = "API keys/credentials stored securely (only from the environment)"
    declared = _declared(spec.security.credentials_stored_securely if spec.security else None)
    refs: list[str] = []
    literal: list[str] = []
    auth = spec.authentication
    if auth is not None:
        for field_name, reference in sorted(auth.credential_refs().items()):
            name = env_name(reference)
            if name is None:
                literal.append(f"authentication.{field_name}")
            else:
                refs.append(f"{field_name} <- ${{{name}}}")
    iut = spec.integration_under_test
    if iut is not None and iut.env:
        for key, value in sorted(iut.env.items()):
            if looks_like_credential_name(key) and env_name(value) is None:
                literal.append(f"integration_under_test.env.{key}")
    if literal:
        return ChecklistItem(
            item_id,
            SECTION,
            label,
            "automated-fail",
            f"literal credential value(s) in the spec at {', '.join(literal)}: use ${{VAR}} references; {declared}",
        )
    if not refs:
        return ChecklistItem(
            item_id, SECTION, label, "automated-pass", f"the spec holds no credential; {declared}"
        )
    set_names = sorted(resolve_secrets(spec, environ))
    where = (
        f"set in the environment: {', '.join(set_names)}"
        if set_names
        else "none set in the environment (the simulator minted its own)"
    )
    return ChecklistItem(
        item_id,
        SECTION,
        label,
        "automated-pass",
        f"every credential is an environment reference ({'; '.join(refs)}); {where}; {declared}",
    )


def _declared(value: bool | None) -> str:
    return {True: "spec: yes", False: "spec: no", None: "spec: not stated"}[value]


def security_items(
    spec: IntegrationSpec,
    out_dir: Path | None,
    *,
    environ: Mapping[str, str] | None = None,
    extra_texts: Mapping[str, str] | None = None,
) -> tuple[ChecklistItem, ...]:
    """The three automated security items, for the checklist's security section.

    ``out_dir`` ``None`` leaves the redaction scan ``not-run``; ``extra_texts`` are outputs not
    yet on disk (the serialized results) to include in the scan.
    """
    scan = None
    if out_dir is not None:
        scan = scan_for_secrets(out_dir, resolve_secrets(spec, environ), extra_texts=extra_texts)
    return (
        _redaction_item(scan),
        tls_item(spec),
        credentials_item(spec, environ),
    )


def scrubber(spec: IntegrationSpec, environ: Mapping[str, str] | None = None) -> Redactor:
    """A redactor for the spec's credentials as the environment resolves them."""
    return Redactor.of(resolve_secrets(spec, environ).values())


def scrub_text(text: str, redactor: Redactor) -> str:
    """``text`` without any known secret (every form) or simulator-made credential."""
    text = redactor.text(text)
    if "sim-" in text:
        text = _MINTED_TEXT.sub(REDACTED, text)
    return text


def leaks_in(texts: Sequence[str], secrets: Mapping[str, str]) -> list[str]:
    """Names of the secrets found in any of ``texts`` (a quick check for tests and callers)."""
    found: list[Leak] = []
    scanner = _Scanner(secrets)
    for index, text in enumerate(texts):
        scanner.scan_bytes(str(index), [text.encode("utf-8")], found)
    return sorted({leak.secret for leak in found})
