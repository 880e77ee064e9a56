"""The ``harness`` command line.

One exit-code contract for every command: 0 passed/ready, 1 a gate failed, 2 bad input or a
harness error, 130 interrupted. Bad input is reported one line per problem as
``FILE:LINE: path.to.key: message``; nothing the user can cause ends in a traceback.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from harness import __version__
from harness.problems import InputError, Problem

if TYPE_CHECKING:
    from harness.project import Project

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130

# Options the serving commands (simulate, proxy) share, defined once so their help agrees.
PORT_OPTION = click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1 (0: any free port).",
)
FAULTS_OPTION = click.option(
    "--faults",
    "faults",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Fault plan (YAML or JSON) to apply.",
)
TRAFFIC_OPTION = click.option(
    "--traffic",
    "traffic_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the traffic log (JSON lines) here.",
)

SPEC_ARGUMENT = click.argument(
    "spec", type=click.Path(dir_okay=False, path_type=Path), metavar="SPEC"
)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog="Exit codes: 0 passed, 1 a gate failed, 2 bad input or harness error, 130 interrupted.",
)
@click.version_option(__version__, prog_name="harness")
def cli() -> None:
    """Test a third-party API integration against its integration spec before you ship it.

    Start with `harness init` (or a filled-in Markdown template and `harness spec import`),
    then `harness validate` until the spec is clean.
    """


@cli.command(short_help="Check specs, their OpenAPI documents and their references.")
@click.argument(
    "specs",
    nargs=-1,
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="SPEC...",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json: one object per spec with every problem, for editors and CI.",
)
def validate(specs: tuple[Path, ...], output_format: str) -> None:
    """Check each SPEC, the OpenAPI documents it names and every reference between them.

    SPEC is an integration.yaml, or a filled-in Markdown template (*.md). Every problem is
    reported at once, one line each: FILE:LINE: path.to.key: message. Exit 0 when all are
    valid, 2 when any is not.
    """
    results: list[dict[str, object]] = []
    problems: list[Problem] = []
    for spec in specs:
        try:
            project = _load_any_project(spec)
        except InputError as error:
            problems.extend(error.problems)
            results.append(
                {
                    "spec": str(spec),
                    "valid": False,
                    "problems": [p.as_dict() for p in error.problems],
                }
            )
            continue
        results.append(_summary(spec, project))
        if output_format == "text":
            _print_summary(spec, project)
    if output_format == "json":
        click.echo(json.dumps(results[0] if len(results) == 1 else results, indent=2))
        if problems:
            raise SystemExit(EXIT_BAD_INPUT)
    elif problems:
        raise InputError(problems)


def _load_any_project(spec: Path) -> Project:
    from harness.project import load_project, project_from_loaded

    if _is_markdown(spec):
        from harness.spec.markdown import load_markdown_spec

        return project_from_loaded(load_markdown_spec(spec))
    return load_project(spec, display=str(spec))


def _summary(spec: Path, project: Project) -> dict[str, object]:
    s = project.spec.spec
    return {
        "spec": str(spec),
        "valid": True,
        "name": s.name,
        "provider": {
            "title": project.provider.title,
            "openapi": project.provider.version,
            "operations": len(project.provider.operations),
        },
        "destination": None
        if project.destination is None
        else {"title": project.destination.title, "openapi": project.destination.version},
        "mapped_fields": len(s.data_mapping.fields) if s.data_mapping else 0,
    }


def _print_summary(spec: Path, project: Project) -> None:
    s = project.spec.spec
    provider = project.provider
    click.echo(f"{spec}: valid - {s.name}")
    click.echo(
        f"  provider: {provider.title} (OpenAPI {provider.version}, {len(provider.operations)} operations)"
    )
    if project.destination is not None:
        click.echo(
            f"  destination: {project.destination.title} (OpenAPI {project.destination.version})"
        )
    click.echo(f"  data mapping: {len(s.data_mapping.fields) if s.data_mapping else 0} fields")


@cli.command(short_help="Print the JSON Schema of integration.yaml.")
def schema() -> None:
    """Print the JSON Schema of integration.yaml (point your editor at it)."""
    from harness.spec.schema import spec_schema

    click.echo(json.dumps(spec_schema(), indent=2))


@cli.command(short_help="Scaffold a repository with a starter integration.yaml.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--openapi",
    "openapi",
    metavar="DOC",
    help="Provider OpenAPI document (path or URL) to pre-fill the spec from.",
)
@click.option("--name", help="Integration name (default: from the OpenAPI title).")
@click.option("--force", is_flag=True, help="Overwrite an existing integration.yaml.")
def init(directory: Path, openapi: str | None, name: str | None, force: bool) -> None:
    """Scaffold DIRECTORY with the harness folders and a starter integration.yaml.

    With --openapi, the provider name, auth scheme, operations and a first data mapping are
    taken from the document; the result passes `harness validate` as written.
    """
    from harness.scaffold import scaffold

    created = scaffold(directory, openapi=openapi, name=name, force=force)
    for path in created.files:
        click.echo(f"created {path}")
    click.echo(f"\nnext: harness validate {created.spec}")


@cli.command(short_help="Serve the provider (or destination) of a spec, with faults.")
@SPEC_ARGUMENT
@PORT_OPTION
@FAULTS_OPTION
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed for generated data and probabilistic faults.",
)
@click.option(
    "--cassettes",
    type=click.Path(path_type=Path),
    help="Answer from recorded VCR cassettes in this file or folder.",
)
@click.option(
    "--on-miss",
    type=click.Choice(["fail", "generate", "passthrough"]),
    default="generate",
    show_default=True,
    help="With --cassettes: what to do for a request no cassette recorded "
    "(passthrough: forward it to --upstream).",
)
@click.option(
    "--upstream",
    metavar="URL",
    help="With --on-miss passthrough: the real provider (a host on provider.live.allowed_hosts).",
)
@click.option(
    "--side",
    type=click.Choice(["provider", "destination"]),
    default="provider",
    show_default=True,
    help="Which document of the spec to serve.",
)
@click.option(
    "--records",
    type=click.IntRange(0, 1_000_000),
    default=3,
    show_default=True,
    help="Records each collection starts with.",
)
@TRAFFIC_OPTION
@click.option(
    "--stateless",
    is_flag=True,
    help="Answer every request from the document alone (no stored state).",
)
@click.option(
    "--varied",
    is_flag=True,
    help="Generate varied values from --seed instead of the document's examples (Prism order).",
)
@click.option(
    "--export-cassette",
    "export_to",
    type=click.Path(dir_okay=False, path_type=Path),
    help="On exit, write the traffic as a VCR cassette (secrets redacted).",
)
def simulate(
    spec: Path,
    port: int,
    faults: Path | None,
    seed: int,
    cassettes: Path | None,
    on_miss: str,
    side: str,
    records: int,
    traffic_path: Path | None,
    stateless: bool,
    varied: bool,
    export_to: Path | None,
    upstream: str | None,
) -> None:
    """Serve SPEC's provider document on 127.0.0.1 until Ctrl-C.

    Responses conform to the document; auth, rate limits and the fault plan follow the spec.
    The admin API lives under /__harness/ (faults, traffic, openapi.json, reset, state, auth).
    """

    from harness.project import load_project
    from harness.provider.api import simulate as start

    project = load_project(spec, display=str(spec))
    with start(
        project,
        side="destination" if side == "destination" else "provider",
        seed=seed,
        faults=faults,
        cassettes=cassettes,
        on_miss="fail"
        if on_miss == "fail"
        else ("passthrough" if on_miss == "passthrough" else "generate"),
        records=records,
        traffic_path=traffic_path,
        port=port,
        stateful=not stateless,
        varied=varied,
        upstream=upstream,
    ) as running:
        click.echo(f"{side} of {project.spec.spec.name}: {running.url}")
        click.echo(
            f"  document: {running.engine.document.title} ({len(running.engine.operations)} operations)"
        )
        for var in sorted(running.credentials.by_env):
            if var in running.credentials.minted:
                click.echo(
                    f"  export {var}={running.credentials.by_env[var]}   # minted for this simulation"
                )
            else:
                click.echo(f"  {var}: taken from your environment")
        click.echo(f"  admin: {running.url}/__harness/traffic  (Ctrl-C to stop)")
        _wait_for_stop()
        click.echo(f"stopped after {running.traffic.count} requests", err=True)
        if export_to is not None:
            from harness.provider.cassettes import export_cassette

            result = export_cassette(
                running.traffic.records(), export_to, running.traffic.redactor, running.url
            )
            click.echo(f"wrote {result.written} interactions to {export_to}", err=True)


@cli.command(short_help="Stand in front of the real provider, with faults and checks.")
@SPEC_ARGUMENT
@click.option(
    "--upstream",
    metavar="URL",
    required=True,
    help="The real provider (a sandbox): a host on provider.live.allowed_hosts, or loopback.",
)
@PORT_OPTION
@FAULTS_OPTION
@TRAFFIC_OPTION
@click.option(
    "--timeout",
    "timeout_seconds",
    type=click.FloatRange(0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds the upstream has for each answer before the client gets a 504.",
)
@click.option(
    "--max-connections",
    type=click.IntRange(1, 10_000),
    default=64,
    show_default=True,
    help="Keep-alive connections to the upstream, at most.",
)
def proxy(
    spec: Path,
    upstream: str,
    port: int,
    faults: Path | None,
    traffic_path: Path | None,
    timeout_seconds: float,
    max_connections: int,
) -> None:
    """Serve on 127.0.0.1 in front of the real provider (--upstream) until Ctrl-C.

    Requests meet the spec's rate limits and the fault plan, then go upstream; responses come
    back unchanged and are checked against the provider document (violations go to the
    traffic log, never to the client). Credentials pass through; the log is scrubbed of them.
    The admin API lives under /__harness/ (faults, traffic, reset).
    """
    from harness.project import load_project
    from harness.provider.api import proxy as start

    project = load_project(spec, display=str(spec))
    with start(
        project,
        upstream,
        faults=faults,
        traffic_path=traffic_path,
        port=port,
        timeout_seconds=timeout_seconds,
        max_connections=max_connections,
    ) as running:
        document = running.engine.document
        click.echo(f"proxy for {project.spec.spec.name}: {running.url} -> {upstream}")
        click.echo(
            f"  responses checked against {document.title} ({len(document.operations)} operations)"
        )
        click.echo(f"  admin: {running.url}/__harness/traffic  (Ctrl-C to stop)")
        _wait_for_stop()
        failing = sum(1 for r in running.traffic.records() if r.validation_errors)
        click.echo(
            f"stopped after {running.traffic.count} requests"
            f" ({failing} with responses that break the document)",
            err=True,
        )


def _freeze_after_full_collection(phase: str, info: dict[str, int]) -> None:
    """After each full collection, move what survived it out of the collector's sight.

    A simulator under a load of writes keeps every record created (a ``POST`` per request):
    each full collection would walk all of them again, so pauses grew with the run (140 ms
    after 200,000 creates) and made the p99. What survives a full collection is what the
    store holds; it is acyclic and freed by reference counting when deleted, so freezing it
    costs nothing but the (rare) cyclic garbage it may later become.
    """
    if phase == "stop" and info.get("generation") == 2:
        gc.freeze()


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM (a service manager or CI stopping us)."""
    import signal
    import threading

    # Everything built so far (documents, compiled schemas) lives as long as the server: keep
    # it out of the collector's sight so collections stay short under load.
    gc.freeze()
    gc.callbacks.append(_freeze_after_full_collection)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


@cli.group()
def spec() -> None:
    """Convert between integration.yaml and the Markdown spec template."""


@spec.command("import", short_help="Markdown template -> integration.yaml.")
@click.argument("markdown", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the YAML here (default: stdout).",
)
def spec_import(markdown: Path, output: Path | None) -> None:
    """Read a filled-in Markdown template into integration.yaml form."""
    from harness.spec.markdown import markdown_to_yaml

    text = markdown_to_yaml(markdown)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


@spec.command("export", short_help="integration.yaml -> Markdown template.")
@SPEC_ARGUMENT
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the Markdown here (default: stdout).",
)
def spec_export(spec: Path, output: Path | None) -> None:
    """Write SPEC back as the Markdown template, filled in.

    SPEC may itself be Markdown: exporting it again normalises the layout.
    """
    from harness.spec.loader import load_spec
    from harness.spec.markdown import export_markdown, load_markdown_spec

    loaded = load_markdown_spec(spec) if _is_markdown(spec) else load_spec(spec, display=str(spec))
    text = export_markdown(loaded.spec)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)


def _register_stage_commands() -> None:
    """Each stage command lives in its own module under ``harness/commands/``."""
    from harness.commands import contract, load, record, report, run, scenarios

    for module in (run, contract, scenarios, load, record, report):
        cli.add_command(module.command)


_register_stage_commands()


def _is_markdown(path: Path) -> bool:
    return path.suffix.lower() in (".md", ".markdown")


def _fail(message: str, code: int) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the CLI and map every outcome onto the exit-code contract."""
    try:
        result = cli.main(args=argv, prog_name="harness", standalone_mode=False)
    except InputError as error:
        for problem in error.problems:
            click.echo(str(problem), err=True)
        if not error.problems:
            click.echo("harness: invalid input", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except click.UsageError as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # bare `harness` or `harness spec`
            click.echo(error.format_message(), err=True)
            sys.exit(EXIT_BAD_INPUT)
        command = error.ctx.command_path if error.ctx is not None else "harness"
        _fail(f"{command}: {error.format_message()} (see '{command} --help')", EXIT_BAD_INPUT)
    except click.ClickException as error:
        _fail(f"harness: {error.format_message()}", EXIT_BAD_INPUT)
    except (KeyboardInterrupt, click.Abort):
        _fail("harness: interrupted", EXIT_INTERRUPTED)
    except SystemExit:
        raise
    except Exception as error:
        if os.environ.get("HARNESS_DEBUG"):
            traceback.print_exc()
        _fail(
            f"harness: internal error: {type(error).__name__}: {error} (set HARNESS_DEBUG=1 for details)",
            EXIT_BAD_INPUT,
        )
    sys.exit(result if isinstance(result, int) else EXIT_OK)
