"""Load profiles as data: the built-ins, the team's files, the spec's overrides, merged by name.

A profile says how long, how many users, what arrival rate (as a multiple of a number the spec
declares: the throughput, the provider's rate limit), in which stages, against what provider
behaviour (injected latency, the declared rate limit), and which families of criteria judge it.
It is data, not code, so a team adds or tunes one without writing Python, and the same profile
runs on one machine or on a Locust cluster.

Where ``--profile NAME`` is looked up, first match wins: a file path; the spec's
``load.profiles``; ``NAME.yaml`` in the profiles folder (the spec's ``load.profiles_dir``, else
``loadtests/profiles`` in the working directory); the built-ins (``assets/profiles.yaml``). A
profile takes every field it leaves unset from the profile it ``extends`` (by default the
lower-priority profile of the same name, else ``expected``), so an override says only what
changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import cattrs
from jsonschema import Draft202012Validator

from harness.problems import InputError, Problem
from harness.project import Project
from harness.schema_errors import located_problems
from harness.spec.model import LoadBasis, LoadJudge, LoadProfile, LoadStage, SlowResponses
from harness.spec.schema import spec_schema
from harness.yamlsource import SourceMap, load_file, parse_text

BUILTIN_NAMES = ("smoke", "expected", "peak", "soak", "rate-limit", "timeouts")
DEFAULT_JUDGE: tuple[LoadJudge, ...] = ("latency", "errors", "throughput", "timeouts")
ASSETS = Path(str(resources.files("harness.load").joinpath("assets")))

_converter = cattrs.Converter()


@dataclass(frozen=True)
class ProfileSource:
    """One profile definition and where it came from (relative paths resolve against ``base``)."""

    profile: LoadProfile
    base: Path
    origin: str
    level: int
    """0 file given, 1 spec, 2 profiles folder, 3 built-in: lower wins."""


@dataclass(frozen=True)
class ResolvedProfile:
    """A profile with every field decided: what the stage plans a run from."""

    name: str
    description: str
    duration_seconds: float
    users: int | None
    basis: LoadBasis
    factor: float
    rps: float | None
    max_rps: float | None
    stages: tuple[LoadStage, ...]
    provider_rate_limit: Literal["declared", "unlimited"]
    faults: Path | None
    slow_responses: SlowResponses | None
    timeout_seconds: float | None
    judge: frozenset[LoadJudge]
    degradation_factor: float
    locustfile: Path | None
    origin: str
    chain: tuple[str, ...]
    """The profiles merged, most specific first (``("peak", "expected")``)."""


@cache
def _validator(many: bool) -> Draft202012Validator:
    defs = spec_schema()["$defs"]
    one = {"$ref": "#/$defs/load_profile"}
    schema: dict[str, Any] = {
        "$defs": defs,
        **(
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["profiles"],
                "properties": {"profiles": {"type": "array", "items": one}},
            }
            if many
            else one
        ),
    }
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def parse_profiles(data: Any, source: SourceMap) -> list[LoadProfile]:
    """Profiles from a file's data: one profile, or ``profiles: [...]``; located problems."""
    many = isinstance(data, dict) and "profiles" in data and "name" not in data
    problems = located_problems(_validator(many).iter_errors(data), source)
    if problems:
        raise InputError(problems)
    items = data["profiles"] if many else [data]
    return [_converter.structure(item, LoadProfile) for item in items]


def load_profile_file(path: Path, level: int = 0) -> list[ProfileSource]:
    document = load_file(path, display=str(path))
    return [
        ProfileSource(p, path.parent, str(path), level)
        for p in parse_profiles(document.data, document.source)
    ]


@cache
def builtin_profiles() -> tuple[ProfileSource, ...]:
    path = ASSETS / "profiles.yaml"
    document = parse_text(path.read_text(encoding="utf-8"), "harness/load/assets/profiles.yaml")
    return tuple(
        ProfileSource(p, ASSETS, "built-in", 3)
        for p in parse_profiles(document.data, document.source)
    )


def profiles_dir(project: Project, cwd: Path) -> Path:
    load = project.spec.spec.load
    if load is not None and load.profiles_dir is not None:
        return project.spec.resolve(load.profiles_dir)
    return cwd / "loadtests" / "profiles"


def _is_path(name: str) -> bool:
    return "/" in name or name.endswith((".yaml", ".yml", ".json"))


class _Catalogue:
    """Every profile definition the run can see, by priority."""

    def __init__(self, project: Project, cwd: Path, explicit: list[ProfileSource]) -> None:
        self.project = project
        self.folder = profiles_dir(project, cwd)
        self.sources: list[ProfileSource] = list(explicit)
        load = project.spec.spec.load
        for profile in (load.profiles or ()) if load is not None else ():
            self.sources.append(ProfileSource(profile, project.spec.base_dir, "spec", 1))
        self._folder_loaded: set[str] = set()
        self.sources.extend(builtin_profiles())

    def _folder(self, name: str) -> Iterator[ProfileSource]:
        if name in self._folder_loaded:
            return
        self._folder_loaded.add(name)
        for suffix in (".yaml", ".yml"):
            path = self.folder / f"{name}{suffix}"
            if path.is_file():
                for source in load_profile_file(path, level=2):
                    if source.profile.name == name:
                        self.sources.append(source)
                        yield source

    def find(self, name: str, below: int = -1) -> ProfileSource | None:
        list(self._folder(name))
        candidates = [s for s in self.sources if s.profile.name == name and s.level > below]
        return min(candidates, key=lambda s: s.level) if candidates else None

    def names(self) -> list[str]:
        found = {s.profile.name for s in self.sources}
        if self.folder.is_dir():
            found |= {p.stem for p in self.folder.glob("*.y*ml")}
        return sorted(found)


def resolve_profile(project: Project, name: str, cwd: Path) -> ResolvedProfile:
    """The profile ``name`` (or the profile file at that path), merged along its ``extends``."""
    load = project.spec.spec.load
    peak_factor = load.peak_factor if load is not None else 2.0
    explicit: list[ProfileSource] = []
    if _is_path(name):
        path = Path(name) if Path(name).is_absolute() else cwd / name
        explicit = load_profile_file(path, level=0)
        if len(explicit) != 1:
            raise InputError(
                [Problem(name, None, "", "a profile file given by path holds exactly one profile")]
            )
    catalogue = _Catalogue(project, cwd, explicit)
    first = explicit[0] if explicit else catalogue.find(name)
    if first is None:
        raise InputError(
            [
                Problem(
                    "--profile",
                    None,
                    "",
                    f"unknown profile '{name}' (known: {', '.join(catalogue.names())}; "
                    f"or a profile file)",
                )
            ]
        )
    chain: list[ProfileSource] = [first]
    while True:
        current = chain[-1]
        parent_name = current.profile.extends
        if parent_name is None:
            parent = catalogue.find(current.profile.name, below=current.level)
            if parent is None and current.level < 3 and current.profile.name != "expected":
                parent = catalogue.find("expected")
        else:
            parent = catalogue.find(parent_name)
        if parent is None:
            break
        if any(parent is seen for seen in chain) or len(chain) > 16:
            names = " -> ".join(s.profile.name for s in [*chain, parent])
            raise InputError(
                [Problem(current.origin, None, "extends", f"profiles extend in a circle: {names}")]
            )
        chain.append(parent)
    return _merge(chain, peak_factor)


def _pick(chain: Sequence[ProfileSource], field: str) -> tuple[Any, ProfileSource | None]:
    for source in chain:
        value = getattr(source.profile, field)
        if value is not None:
            return value, source
    return None, None


def _merge(chain: Sequence[ProfileSource], peak_factor: float) -> ResolvedProfile:
    head = chain[0]
    names = tuple(s.profile.name for s in chain)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(LoadProfile):
        values[f.name] = _pick(chain, f.name)
    duration, _ = values["duration_seconds"]
    basis, _ = values["basis"]
    problems: list[Problem] = []
    if duration is None:
        problems.append(Problem(head.origin, None, head.profile.name, "no duration_seconds"))
    if basis is None:
        problems.append(Problem(head.origin, None, head.profile.name, "no basis"))
    if problems:
        raise InputError(problems)
    factor = 1.0
    for source in chain:
        if source.profile.factor is not None:
            factor = source.profile.factor
            break
        if source.level == 3 and source.profile.name == "peak":
            factor = peak_factor  # the built-in peak is "load.peak_factor x throughput"
            break
    faults, faults_source = values["faults"]
    locustfile, locust_source = values["locustfile"]
    stages, _ = values["stages"]
    judge, _ = values["judge"]
    description, _ = values["description"]
    return ResolvedProfile(
        name=head.profile.name,
        description=description or "",
        duration_seconds=float(duration),
        users=values["users"][0],
        basis=basis,
        factor=float(factor),
        rps=values["rps"][0],
        max_rps=values["max_rps"][0],
        stages=stages or (LoadStage(name="main"),),
        provider_rate_limit=values["provider_rate_limit"][0] or "unlimited",
        faults=(faults_source.base / faults).resolve() if faults and faults_source else None,
        slow_responses=values["slow_responses"][0],
        timeout_seconds=values["timeout_seconds"][0],
        judge=frozenset(judge or DEFAULT_JUDGE),
        degradation_factor=float(values["degradation_factor"][0] or 1.5),
        locustfile=(locust_source.base / locustfile).resolve()
        if locustfile and locust_source
        else None,
        origin=head.origin,
        chain=names,
    )
