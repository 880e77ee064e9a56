"""Cassettes: vcrpy and schemathesis formats in, vcrpy out, replay with sequences and body matching."""

from __future__ import annotations

import base64
import json
import textwrap
from pathlib import Path

import pytest

from harness.problems import InputError
from harness.provider.cassettes import (
    CassetteReplayer,
    Interaction,
    export_cassette,
    load_cassettes,
)
from harness.provider.traffic import TrafficLog, TrafficRecord
from harness.redact import REDACTED, Redactor

from ..conftest import REPO

CASSETTES = REPO / "tests" / "data" / "cassettes"
VCRPY = CASSETTES / "vcrpy-pets.yaml"
ST_TEXT = CASSETTES / "schemathesis-pets.yaml"
ST_BYTES = CASSETTES / "schemathesis-pets-bytes.yaml"
SECRET = "sk_live_4f9a2c1e8b7d"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_load_vcrpy_cassette() -> None:
    interactions = load_cassettes(VCRPY)
    assert [(i.method, i.path, i.query, i.status) for i in interactions] == [
        ("GET", "/v1/pets", "status=available&limit=2", 200),
        ("GET", "/v1/pets/1", "", 503),
        ("GET", "/v1/pets/1", "", 200),
        ("POST", "/v1/pets", "", 201),
    ]
    post = interactions[3]
    assert post.request_json == {"name": "kit", "tag": "cat"}
    assert json.loads(post.body) == {"id": 3, "name": "kit", "tag": "cat"}
    assert ("content-type", "application/json") in post.headers
    assert str(post.source) == f"{VCRPY}#3"
    assert ("retry-after", "1") in interactions[1].headers
    assert interactions[0].request_body == b"" and interactions[0].request_json is None


def test_load_schemathesis_cassettes_text_and_base64_agree() -> None:
    text, raw = load_cassettes(ST_TEXT), load_cassettes(ST_BYTES)
    assert len(text) == len(raw) == 6
    assert [(i.method, i.path, i.status, i.request_json, i.body) for i in text] == [
        (i.method, i.path, i.status, i.request_json, i.body) for i in raw
    ]
    posts = [i for i in text if i.method == "POST"]
    assert [(i.status, i.request_json) for i in posts] == [
        (201, {"name": "rex"}),
        (201, {"name": "rex"}),
        (201, {"name": "tom"}),
    ]
    assert json.loads(posts[2].body) == {"id": 2, "name": "tom"}
    gets = [i for i in text if i.method == "GET"]
    assert sorted(i.query for i in gets) == ["limit=1", "limit=2", "limit=3"]
    assert all(("authorization", "[Filtered]") in i.request_headers for i in text)


def test_load_directory_reads_every_cassette_in_order() -> None:
    interactions = load_cassettes(CASSETTES)
    assert len(interactions) == 16
    files = [Path(i.source.file).name for i in interactions]
    assert files == sorted(files)


def test_schemathesis_failed_requests_are_skipped(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "st.yaml",
        """
        command: 'st run http://127.0.0.1:1/openapi.json'
        recorded_with: 'Schemathesis 4.32.5'
        seed: 1
        http_interactions:
        - id: 'a'
          status: 'ERROR'
          recorded_at: '2026-01-01T00:00:00+00:00'
          checks: []
          request:
            uri: 'http://127.0.0.1:1/pets'
            method: 'GET'
            headers:
              "Accept":
              - "*/*"
          response: null
        - id: 'b'
          status: 'SUCCESS'
          recorded_at: '2026-01-01T00:00:01+00:00'
          checks: []
          request:
            uri: 'http://127.0.0.1:1/pets?limit=1'
            method: 'GET'
            headers: {}
          response:
            status:
              code: '200'
              message: "OK"
            elapsed: '0.001'
            headers:
              "Content-Encoding":
              - "gzip"
            body:
              encoding: 'utf-8'
              string: "[]"
            http_version: '1.1'
        """,
    )
    [only] = load_cassettes(path)
    assert (only.status, only.query, only.body, only.headers) == (200, "limit=1", b"[]", ())
    assert only.source.index == 1
    empty = write(tmp_path, "empty.yaml", "command: 'st run x'\nseed: 1\nhttp_interactions:\n")
    assert load_cassettes(empty) == []


def test_replayer_plays_recorded_sequences_then_repeats_the_last() -> None:
    replayer = CassetteReplayer(load_cassettes(VCRPY))
    assert replayer.on_miss == "fail"
    statuses = [replayer.match("GET", "/v1/pets/1", "", b"") for _ in range(3)]
    assert [i.status if i else None for i in statuses] == [503, 200, 200]
    replayer.reset()
    hit = replayer.match("get", "/v1/pets/1")
    assert hit is not None and hit.status == 503


def test_replayer_query_is_order_insensitive_and_exact() -> None:
    replayer = CassetteReplayer(load_cassettes(VCRPY), on_miss="generate")
    assert replayer.match("GET", "/v1/pets", "limit=2&status=available") is not None
    assert replayer.match("GET", "/v1/pets", "limit=3&status=available") is None
    assert replayer.match("GET", "/v1/pets", "limit=2") is None
    assert replayer.match("GET", "/v1/pets", "limit=2&status=available&x=1") is None
    assert replayer.match("DELETE", "/v1/pets", "limit=2&status=available") is None
    assert replayer.match("GET", "/v1/cats") is None
    assert replayer.on_miss == "generate"


def test_replayer_matches_json_bodies_by_value() -> None:
    replayer = CassetteReplayer(load_cassettes(VCRPY))
    hit = replayer.match("POST", "/v1/pets", "", b'{"tag":"cat",  "name":"kit"}')
    assert hit is not None and hit.status == 201
    assert replayer.match("POST", "/v1/pets", "", b'{"name": "kit", "tag": "dog"}') is None
    assert replayer.match("POST", "/v1/pets", "", b'{"name": "kit"}') is None
    assert replayer.match("POST", "/v1/pets", "", b"name=kit&tag=cat") is None
    assert [i.status for i in replayer.unused()] == [200, 503, 200]


def test_replayer_rejects_an_unknown_miss_policy() -> None:
    with pytest.raises(ValueError, match="on_miss"):
        CassetteReplayer([], on_miss="ignore")  # type: ignore[arg-type]


def _record(seq: int, **changes: object) -> TrafficRecord:
    values: dict[str, object] = {
        "seq": seq,
        "side": "provider",
        "method": "GET",
        "path": "/v1/pets",
        "query": "",
        "status": 200,
        "request_headers": (("accept", "application/json"),),
        "response_headers": (
            ("content-type", "application/json"),
            ("content-length", "999"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ),
        "response_body": '[{"id": 1}]',
    }
    values.update(changes)
    return TrafficRecord(**values)  # type: ignore[arg-type]


def test_export_is_read_by_vcrpy_and_by_us(tmp_path: Path) -> None:
    records = [
        _record(1, query=f"api_key={SECRET}&limit=1"),
        _record(2, status=None, note="reset"),
        _record(
            3,
            method="POST",
            request_headers=(("content-type", "application/json"),),
            request_body='{"name": "rex", "password": "hunter22"}',
            status=201,
            response_body='{"id": 2}',
            response_body_truncated=True,
        ),
    ]
    path = tmp_path / "out" / "pets.yaml"
    result = export_cassette(records, path, Redactor.of([SECRET]), "http://127.0.0.1:9/")
    assert (result.written, result.skipped_seqs, result.truncated_seqs) == (2, (2,), (3,))

    loaded = load_cassettes(path)
    assert [(i.method, i.path, i.query, i.status) for i in loaded] == [
        ("GET", "/v1/pets", f"api_key={REDACTED}&limit=1", 200),
        ("POST", "/v1/pets", "", 201),
    ]
    assert ("content-length", "11") in loaded[0].headers
    assert [v for k, v in loaded[0].headers if k == "set-cookie"] == [REDACTED, REDACTED]
    # Redacted values are wildcards: the live client sends its real key and password.
    replayer = CassetteReplayer(loaded)
    assert replayer.match("GET", "/v1/pets", "limit=1&api_key=other-live-key") is loaded[0]
    live_body = b'{"password": "p4ssw0rd-live", "name": "rex"}'
    assert replayer.match("POST", "/v1/pets", "", live_body) is loaded[1]

    # vcrpy itself (what pytest-recording drives) replays the file without touching the network.
    vcr = pytest.importorskip("vcr")
    requests = pytest.importorskip("requests")
    with vcr.use_cassette(str(path), record_mode="none"):  # default matchers, query included
        response = requests.get(f"http://127.0.0.1:9/v1/pets?limit=1&api_key={REDACTED}")
        created = requests.post("http://127.0.0.1:9/v1/pets", json={"name": "rex"})
    assert (response.status_code, response.json()) == (200, [{"id": 1}])
    assert response.headers["Content-Length"] == "11"
    assert (created.status_code, created.json()) == (201, {"id": 2})


def test_canary_no_secret_in_any_form_reaches_a_cassette(tmp_path: Path) -> None:
    user = "svc-user"
    basic = base64.b64encode(f"{user}:{SECRET}".encode()).decode()
    record = _record(
        0,
        method="POST",
        path="/oauth/token",
        query=f"api_key={SECRET}",
        request_headers=(
            ("authorization", f"Bearer {SECRET}"),
            ("x-forwarded-authorization", f"Basic {basic}"),
            ("x-echo", f"Basic {basic}"),
            ("content-type", "application/json"),
        ),
        request_body=json.dumps({"access_token": SECRET, "grant_type": "refresh"}),
        response_headers=(("content-type", "application/json"),),
        response_body=json.dumps({"access_token": SECRET, "note": f"token {SECRET} issued"}),
        status=200,
    )
    redactor = Redactor.of([SECRET])
    log = TrafficLog.open(tmp_path / "traffic.jsonl", redactor)
    log.append(record)
    log.close()
    cassette = tmp_path / "canary.yaml"
    export_cassette([record], cassette, redactor, "https://api.example.com")
    forms = [
        SECRET,
        basic,
        base64.b64encode(SECRET.encode()).decode().rstrip("="),
        base64.b64encode(SECRET.encode()).decode()[2:12],
    ]
    for artifact in (cassette, tmp_path / "traffic.jsonl"):
        text = artifact.read_text()
        assert REDACTED in text
        for form in forms:
            assert form not in text, (artifact.name, form)


def _problems(path: Path | list[Path]) -> list[tuple[str, int | None, str, str]]:
    with pytest.raises(InputError) as caught:
        load_cassettes(path)
    return [(Path(p.file).name, p.line, p.path, p.message) for p in caught.value.problems]


def test_unreadable_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "version: 1\ninteractions:\n- request: [\n")
    [(name, line, where, message)] = _problems(path)
    assert (name, where) == ("broken.yaml", "")
    assert line is not None and line >= 3 and message.startswith("invalid YAML")


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("just: keys\n", "unknown cassette format"),
        ("- a\n- b\n", "expected a mapping at the top"),
        ("- request: {uri: x}\n", "pre-1.0 vcrpy cassette"),
        ("version: 1\ninteractions: []\nhttp_interactions: []\n", "has both"),
        ("version: 2\ninteractions: []\n", "unsupported vcrpy cassette version 2"),
        ("interactions: {}\nversion: 1\n", "must be a list"),
        ("!!python/object/apply:os.system ['true']\n", "invalid YAML"),
    ],
)
def test_wrong_structure_is_an_input_error(tmp_path: Path, text: str, fragment: str) -> None:
    path = write(tmp_path, "bad.yaml", text)
    problems = _problems(path)
    assert len(problems) == 1
    assert problems[0][0] == "bad.yaml"
    assert fragment in problems[0][3]


def test_every_problem_in_every_file_is_reported_with_its_place(tmp_path: Path) -> None:
    vcr_bad = write(
        tmp_path,
        "a.yaml",
        """
        version: 1
        interactions:
        - request:
            method: GET
            uri: http://x/ok
          response:
            status: {code: 200, message: OK}
            body: {string: ''}
        - request:
            method: GET
          response:
            status: {code: 999}
        - response: {}
        """,
    )
    st_bad = write(
        tmp_path,
        "b.yaml",
        """
        command: 'st run'
        http_interactions:
        - id: 'x'
          request:
            uri: 'http://x/y'
            method: 'POST'
            headers: {}
            body:
              encoding: 'utf-8'
              base64_string: 'not base64!'
          response:
            status: {code: 'OK'}
        - id: 'y'
          request: {uri: 'http://x/z', method: 'GET'}
        """,
    )
    assert _problems([vcr_bad, st_bad]) == [
        ("a.yaml", 9, "interactions[1].request", "missing key 'uri'"),
        ("a.yaml", 12, "interactions[1].response.status.code", "not an HTTP status code: 999"),
        ("a.yaml", 13, "interactions[2].request", "'request' must be a mapping, not nothing"),
        ("b.yaml", 10, "http_interactions[0].request.body.base64_string", "not valid base64"),
        (
            "b.yaml",
            12,
            "http_interactions[0].response.status.code",
            "not an HTTP status code: 'OK'",
        ),
        ("b.yaml", 13, "http_interactions[1]", "missing key 'response'"),
    ]


def test_vcrpy_specific_tags_are_read(tmp_path: Path) -> None:
    """Binary bodies (``!!binary``) and old file-like request bodies, as vcrpy writes them."""
    path = write(
        tmp_path,
        "tags.yaml",
        """
        interactions:
        - request:
            body: !!python/object/new:_io.BytesIO
              state: !!python/tuple
              - !!binary |
                eyJhIjogMX0=
              - 0
              - null
            headers: {Content-Type: [application/json]}
            method: POST
            uri: http://x/upload?b=2&a=1
          response:
            body: {string: !!binary "/w=="}
            headers: {}
            status: {code: 200, message: OK}
        version: 1
        """,
    )
    [upload] = load_cassettes(path)
    assert (upload.request_body, upload.request_json, upload.body) == (
        b'{"a": 1}',
        {"a": 1},
        b"\xff",
    )
    assert CassetteReplayer([upload]).match("POST", "/upload", "a=1&b=2", b'{ "a" : 1 }') is upload


def test_missing_files_and_empty_directories(tmp_path: Path) -> None:
    assert _problems(tmp_path / "nope.yaml") == [("nope.yaml", None, "", "file not found")]
    assert _problems(tmp_path) == [(tmp_path.name, None, "", "no cassette files found")]


def test_interaction_replays_as_a_respond_action() -> None:
    interaction: Interaction = load_cassettes(VCRPY)[1]
    action = interaction.respond()
    assert action.status == 503
    assert ("retry-after", "1") in action.headers
    assert all(k != "content-length" for k, _ in action.headers)
    assert json.loads(action.body) == {"error": "unavailable"}
