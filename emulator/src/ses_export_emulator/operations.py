"""
The emulator's control operations, each defined once: :data:`OPERATIONS`.

An entry is a function applying the operation to the emulator state (:class:`EmulatorCore`) plus its
HTTP route; its name, parameters with their types and one-line description are read from the
function's signature and docstring (a function taking ``**kwargs`` lists what they may be in
``extra``). From this table come the :class:`~ses_export_emulator.SesExportEmulator`
methods, the ``/_emulator/...`` HTTP routes, the ``ses-export-emulator control`` subcommands and
the documentation's list of control operations (docs/emulator.md) (:func:`markdown_table`).

Every function runs on the server's event loop (the state is loop-confined).
"""

from __future__ import annotations

import datetime
import inspect
import re
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from ses_export_emulator import presign
from ses_export_emulator.core import EmulatorCore
from ses_export_emulator.faults import FaultConfig
from ses_export_emulator.jobs import Advance, ReadCall, Rule, Terminal

NO_DEFAULT: Any = inspect.Parameter.empty
_WIRE_TYPES = (str, int, float, bool)


def param_docs(obj: Any) -> dict[str, str]:
    """
    The ``:param name: text`` entries of ``obj``'s docstring, continuation lines joined.

    :param obj: a function or class.
    """
    docs: dict[str, str] = {}
    current: str | None = None
    for line in (inspect.getdoc(obj) or "").splitlines():
        match = re.match(r":param (\w+):\s*(.*)", line.strip())
        if match:
            current = match.group(1)
            docs[current] = match.group(2)
        elif current and line.startswith(" ") and line.strip():
            docs[current] += " " + line.strip()
        else:
            current = None
    return docs


@dataclass(frozen=True)
class Param:
    """
    One parameter of a control operation as it travels over HTTP (JSON) and the CLI (strings).

    :param name: the keyword name.
    :param annotation: its type: ``str``, ``int``, ``float``, ``bool``, a ``Literal``, a tuple of one
        of those, or any of them ``| None``.
    :param default: the default (``NO_DEFAULT``: required).
    :param help: a description.
    :param flag: the CLI flag (default ``--name-with-dashes``).
    """

    name: str
    annotation: Any
    default: Any = NO_DEFAULT
    help: str = ""
    flag: str | None = None

    @property
    def required(self) -> bool:
        """Whether the parameter must be given."""
        return self.default is NO_DEFAULT

    @property
    def cli_flag(self) -> str:
        """The CLI flag."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def spec(self) -> tuple[type, tuple[Any, ...] | None, bool, bool]:
        """``(scalar type, choices, nullable, repeated)`` of the annotation."""
        spec = wire_spec(self.annotation)
        if spec is None:
            raise TypeError(f"{self.name}: {self.annotation!r} cannot travel over HTTP or the CLI")
        return spec

    @property
    def type_name(self) -> str:
        """The type as a short text, e.g. ``int | None`` or ``'get' | 'list' | 'any'``."""
        base, choices, nullable, many = self.spec
        text = " | ".join(repr(c) for c in choices) if choices else base.__name__
        if many:
            text = f"list[{text}]"
        return f"{text} | None" if nullable else text

    def convert(self, value: Any) -> Any:
        """
        A JSON or CLI value as the operation expects it; ``ValueError`` if it does not fit.

        :param value: the value.
        """
        base, choices, nullable, many = self.spec
        if value is None:
            if nullable:
                return None
            raise ValueError(f"{self.name} must not be null")
        if many:
            if not isinstance(value, (list, tuple)):
                raise ValueError(f"{self.name} must be a list, got {value!r}")
            return tuple(self._scalar(item, base, choices) for item in value)
        return self._scalar(value, base, choices)

    def _scalar(self, value: Any, base: type, choices: tuple[Any, ...] | None) -> Any:
        """
        Convert one scalar.

        :param value: the value.
        :param base: ``str``, ``int``, ``float`` or ``bool``.
        :param choices: the allowed values, if limited.
        """
        ok = isinstance(value, base) and not (base is not bool and isinstance(value, bool))
        if not ok and base in (int, float) and isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                converted = base(value)
            except ValueError:
                converted = None
            ok = converted is not None and (base is float or not isinstance(value, float) or value.is_integer())
            value = converted if ok else value
        if not ok:
            raise ValueError(f"{self.name} must be {self.type_name}, got {value!r}")
        if choices is not None and value not in choices:
            raise ValueError(f"{self.name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
        return value


def wire_spec(annotation: Any) -> tuple[type, tuple[Any, ...] | None, bool, bool] | None:
    """
    ``(scalar type, choices, nullable, repeated)`` of a type annotation, or ``None`` when values of
    that type cannot travel as JSON / CLI strings (e.g. a :class:`Rule` object).

    :param annotation: the annotation.
    """
    nullable = many = False
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        nullable = len(members) < len(get_args(annotation))
        if len(members) != 1:
            return None
        annotation = members[0]
    if get_origin(annotation) in (tuple, list):
        many, annotation = True, get_args(annotation)[0]
    choices: tuple[Any, ...] | None = None
    if get_origin(annotation) is Literal:
        choices = get_args(annotation)
        annotation = type(choices[0])
    if annotation not in _WIRE_TYPES:
        return None
    return annotation, choices, nullable, many


def dataclass_params(cls: type, names: tuple[str, ...], flags: Mapping[str, str] | None = None) -> tuple[Param, ...]:
    """
    Params for some fields of a dataclass (types from its annotations, help from its docstring).

    :param cls: the dataclass.
    :param names: the fields, in order.
    :param flags: CLI flags that differ from ``--name-with-dashes``.
    """
    hints = get_type_hints(cls)
    docs = param_docs(cls)
    by_name = {f.name: f for f in fields(cls)}
    return tuple(
        Param(
            name,
            hints[name],
            None if by_name[name].default is MISSING else by_name[name].default,
            docs.get(name, ""),
            (flags or {}).get(name),
        )
        for name in names
    )


@dataclass(frozen=True)
class ControlOperation:
    """
    One row of the table.

    :param apply: ``apply(core, **params)``: applies the operation to the emulator state; its name is
        the operation's name, the first line of its docstring the description.
    :param http_method: the HTTP method of its control route.
    :param path: the route's path; ``{name}`` segments are parameters.
    :param result_key: over HTTP the result is ``{result_key: result}`` (``None``: the result itself,
        or ``{"ok": true}`` when it is ``None``).
    :param extra: the parameters ``apply``'s ``**kwargs`` takes.
    """

    apply: Callable[..., Any]
    http_method: str
    path: str
    result_key: str | None = None
    extra: tuple[Param, ...] = ()
    name: str = field(init=False)
    description: str = field(init=False)
    params: tuple[Param, ...] = field(init=False)

    def __post_init__(self) -> None:
        """Read name, description and parameters off ``apply``."""
        hints = get_type_hints(self.apply)
        docs = param_docs(self.apply)
        params: list[Param] = []
        for parameter in list(inspect.signature(self.apply).parameters.values())[1:]:
            if parameter.kind is inspect.Parameter.VAR_KEYWORD:
                params.extend(self.extra)
            elif wire_spec(hints[parameter.name]) is not None:  # Python-only ones (a Rule object) are skipped
                params.append(
                    Param(parameter.name, hints[parameter.name], parameter.default, docs.get(parameter.name, ""))
                )
        object.__setattr__(self, "name", self.apply.__name__)
        object.__setattr__(self, "description", (inspect.getdoc(self.apply) or "").split("\n\n")[0].replace("\n", " "))
        object.__setattr__(self, "params", tuple(params))

    @property
    def cli_name(self) -> str:
        """The ``ses-export-emulator control`` subcommand."""
        return self.name.replace("_", "-")

    def invoke(self, core: EmulatorCore, raw: Mapping[str, Any]) -> Any:
        """
        Apply the operation with JSON / CLI values: names checked, values converted.

        :param core: the emulator state.
        :param raw: parameter values by name.
        """
        known = {p.name: p for p in self.params}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ValueError(
                f"{self.name}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known) or 'none'}"
            )
        missing = [p.name for p in self.params if p.required and p.name not in raw]
        if missing:
            raise ValueError(f"{self.name}: missing parameter(s) {', '.join(missing)}")
        return self.apply(core, **{name: known[name].convert(value) for name, value in raw.items()})

    def to_json(self, result: Any) -> Any:
        """
        The HTTP answer for ``result``.

        :param result: what ``apply`` returned.
        """
        if self.result_key is not None:
            return {self.result_key: result}
        return {"ok": True} if result is None else result


# -- the operations ----------------------------------------------------------------------------
def health(core: EmulatorCore) -> dict[str, Any]:
    """Whether the emulator answers, with its clock (epoch seconds)."""
    return {"ok": True, "time": time.time()}


def stats(core: EmulatorCore) -> dict[str, Any]:
    """Request, job and download counters."""
    return core.stats.to_dict()


def reset_stats(core: EmulatorCore) -> None:
    """Zero the counters."""
    core.stats.reset()


def faults(core: EmulatorCore) -> dict[str, Any]:
    """The fault settings, with the seconds left of any storm."""
    return core.faults.state()


_STORMS = (
    Param(
        "throttle_all_seconds", float | None, None, "answer every API call with 429 for this many wall-clock seconds"
    ),
    Param("fail_all_seconds", float | None, None, "answer every API call with a 5xx for this many wall-clock seconds"),
    Param("fail_all_status", Literal[500, 503], 503, "the status of that storm"),
)
_FAULT_FIELDS = tuple(f.name for f in fields(FaultConfig))


def set_faults(core: EmulatorCore, **options: Any) -> dict[str, Any]:
    """
    Change some fault settings (the others stay) or start a storm; returns the new settings.

    :param options: :class:`~ses_export_emulator.faults.FaultConfig` fields, and
        ``throttle_all_seconds`` / ``fail_all_seconds`` (+ ``fail_all_status``) storms.
    """
    storm = {p.name: options.pop(p.name) for p in _STORMS if p.name in options}
    core.faults.set(**options)
    if "expire_urls_immediately" in options:
        core.signer.expire_immediately = bool(options["expire_urls_immediately"])
    if storm.get("throttle_all_seconds") is not None:
        core.faults.throttle_all(float(storm["throttle_all_seconds"]))
    if storm.get("fail_all_seconds") is not None:
        core.faults.fail_all(float(storm["fail_all_seconds"]), int(storm.get("fail_all_status") or 503))
    return core.faults.state()


def clear_faults(core: EmulatorCore) -> dict[str, Any]:
    """Remove every fault, storms included."""
    core.faults.clear()
    core.signer.expire_immediately = False
    return core.faults.state()


def throttle_all(core: EmulatorCore, seconds: float) -> dict[str, Any]:
    """
    Answer every API call with 429 for the next ``seconds`` (wall clock, never scaled).

    :param seconds: how long.
    """
    return set_faults(core, throttle_all_seconds=seconds)


ApiOperation = Literal["CreateExportJob", "GetExportJob", "ListExportJobs", "CancelExportJob"]


def throttle_next(core: EmulatorCore, n: int, operation: ApiOperation | None = None) -> dict[str, Any]:
    """
    Answer the next ``n`` calls of ``operation`` (or of any operation) with 429, however late they come.

    A fault window counted in calls, not seconds: it hits exactly the calls it should, at any machine
    speed (e.g. the sensor's first ``n`` GetExportJob attempts).

    :param n: how many calls (replaces the count left for ``operation``; 0 ends it).
    :param operation: ``CreateExportJob``, ``GetExportJob``, ``ListExportJobs`` or ``CancelExportJob``;
        ``None``: any of them.
    """
    core.faults.throttle_next(n, operation)
    return core.faults.state()


def fail_all(core: EmulatorCore, seconds: float, status: Literal[500, 503] = 503) -> dict[str, Any]:
    """
    Answer every API call with ``status`` for the next ``seconds`` (wall clock, never scaled).

    :param seconds: how long.
    :param status: 500 (InternalFailure) or 503 (ServiceUnavailable).
    """
    return set_faults(core, fail_all_seconds=seconds, fail_all_status=status)


def rules(core: EmulatorCore) -> list[dict[str, Any]]:
    """The outcome rules waiting for new jobs."""
    return [rule.to_dict() for rule in core.store.rules]


_CRITERIA = ("job_index", "job_id", "source_type")
_RULE_FIELDS = ("action", *_CRITERIA, "count", "message")


def add_rule(core: EmulatorCore, rule: Rule | None = None, **fields: Any) -> dict[str, Any]:
    """
    Add an outcome rule deciding how matching new jobs end: ``fail``, ``hang`` or ``complete``.

    :param rule: a :class:`~ses_export_emulator.jobs.Rule` (Python only), or give its
        fields as keywords; ``fail_next=n`` is short for ``action="fail", count=n``.
    :param fields: :class:`~ses_export_emulator.jobs.Rule` fields.
    """
    if rule is None:
        if fields.get("fail_next") is not None:
            fields = {"action": "fail", "count": int(fields.pop("fail_next")), **fields}
        fields.pop("fail_next", None)
        rule = Rule(**fields)
    core.store.add_rule(rule)
    return rule.to_dict()


def fail_next(core: EmulatorCore, n: int = 1, message: str | None = None, **criteria: Any) -> dict[str, Any]:
    """
    Make the next ``n`` (matching) jobs FAIL.

    :param n: how many.
    :param message: their FailureInfo.ErrorMessage.
    :param criteria: only jobs matching these :class:`~ses_export_emulator.jobs.Rule`
        criteria (``job_index``, ``job_id``, ``source_type``).
    """
    if message is not None:
        criteria["message"] = message
    return add_rule(core, action="fail", count=n, **criteria)


def clear_rules(core: EmulatorCore) -> None:
    """Remove every rule: outcome rules and advance rules (queued or attached to jobs)."""
    core.store.clear_rules()


def advance_after(
    core: EmulatorCore,
    job_id: str | None = None,
    *,
    reads: int,
    to: Terminal = "COMPLETED",
    message: str | None = None,
    count: ReadCall = "get",
) -> dict[str, Any]:
    """
    Hold a job in PROCESSING until its ``reads``-th read, then move it to ``to``; the later reads see ``to``.

    Counting starts now and replaces any earlier advance rule of the job. ``count="list"`` is for
    deferrable waits: the trigger polls with ListExportJobs and calls GetExportJob only for jobs that
    left the in-flight lists, so there a job's reads are the ListExportJobs answers listing it (one
    per poll cycle).

    :param job_id: the job (an unfinished one); ``None``: the next job created.
    :param reads: how many counted reads the job is answered with its current status (at least 1).
    :param to: ``COMPLETED``, ``FAILED`` or ``CANCELLED``.
    :param message: the FailureInfo.ErrorMessage when ``to`` is ``FAILED``.
    :param count: which reads count: ``get`` (GetExportJob of the job), ``list`` (ListExportJobs
        answers listing the job) or ``any`` (both).
    """
    advance = Advance(reads=reads, to=to, message=message, count=count, job_id=job_id)
    core.store.advance_after(advance)
    return advance.to_dict()


def set_vdm(core: EmulatorCore, enabled: bool) -> dict[str, bool]:
    """
    Enable or disable Virtual Deliverability Manager on the emulated account (disabled: every create is refused).

    :param enabled: whether VDM is enabled.
    """
    core.options.vdm_enabled = enabled
    return {"vdm_enabled": enabled}


def set_volumes(
    core: EmulatorCore, identity: str, date: str, send: int, permanent_bounce: int = 0, complaint: int = 0
) -> dict[str, Any]:
    """
    Set one day's SEND, PERMANENT_BOUNCE and COMPLAINT volumes of an email identity in metrics exports created after.

    A metrics export broken down by ``EMAIL_IDENTITY`` whose range holds the day shows these volumes for that day
    (split evenly over the identity's rows when the export has other dimensions too); its RATE metrics and other
    metrics follow. Nothing is checked against SEND: a test may set impossible data on purpose.

    :param identity: the email identity (``example.com``, ``news@example.com``).
    :param date: the UTC day, ``YYYY-MM-DD``.
    :param send: messages sent that day (>= 0).
    :param permanent_bounce: permanent bounces that day (>= 0).
    :param complaint: complaints that day (>= 0).
    """
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        raise ValueError(f"date must be YYYY-MM-DD, got {date!r}")
    datetime.date.fromisoformat(date)
    counts = {"SEND": send, "PERMANENT_BOUNCE": permanent_bounce, "COMPLAINT": complaint}
    negative = [name for name, value in counts.items() if value < 0]
    if negative:
        raise ValueError(f"volumes must be >= 0: {', '.join(negative)}")
    core.store.volumes[(identity, date)] = {name: float(value) for name, value in counts.items()}
    return {
        "identity": identity,
        "date": date,
        "send": send,
        "permanent_bounce": permanent_bounce,
        "complaint": complaint,
    }


def clear_volumes(core: EmulatorCore) -> None:
    """Forget every volume set with set_volumes (exports created after have generated data again)."""
    core.store.volumes.clear()


def jobs(core: EmulatorCore) -> list[dict[str, Any]]:
    """Every job, oldest first (JobId, index, status, outcome, advance rule, timestamps)."""
    return [core.store.describe(job) for job in core.store.all_jobs()]


def complete_job(core: EmulatorCore, job_id: str) -> dict[str, Any]:
    """
    Force a job to COMPLETED now.

    :param job_id: the JobId.
    """
    return core.store.describe(core.store.force(job_id, "COMPLETED"))


def fail_job(core: EmulatorCore, job_id: str, message: str | None = None) -> dict[str, Any]:
    """
    Force a job to FAILED now.

    :param job_id: the JobId.
    :param message: the FailureInfo.ErrorMessage.
    """
    return core.store.describe(core.store.force(job_id, "FAILED", message))


def delete_job(core: EmulatorCore, job_id: str) -> None:
    """
    Make a job disappear (an unknown JobId afterwards).

    :param job_id: the JobId.
    """
    core.store.delete(job_id)


def expire_urls(core: EmulatorCore) -> int:
    """Expire every download URL issued so far; returns how many were live."""
    return core.signer.expire_all()


def issued_secrets(core: EmulatorCore) -> list[str]:
    """Every secret value (signature, security token, access key id) put in a download URL so far, for leak checks."""
    return presign.issued_secrets()


_FAULT_PARAMS = dataclass_params(FaultConfig, _FAULT_FIELDS, {"deny_operations": "--deny-operation"}) + _STORMS
_RULE_PARAMS = (
    *dataclass_params(Rule, _RULE_FIELDS),
    Param("fail_next", int | None, None, "short for action='fail', count=fail_next"),
)

#: The control operations by name, in the order docs/emulator.md lists them.
OPERATIONS: dict[str, ControlOperation] = {
    op.name: op
    for op in (
        ControlOperation(health, "GET", "/_emulator/health"),
        ControlOperation(stats, "GET", "/_emulator/stats"),
        ControlOperation(reset_stats, "POST", "/_emulator/stats/reset"),
        ControlOperation(faults, "GET", "/_emulator/faults"),
        ControlOperation(set_faults, "POST", "/_emulator/faults", extra=_FAULT_PARAMS),
        ControlOperation(clear_faults, "DELETE", "/_emulator/faults"),
        ControlOperation(throttle_all, "POST", "/_emulator/throttle-all"),
        ControlOperation(throttle_next, "POST", "/_emulator/throttle-next"),
        ControlOperation(fail_all, "POST", "/_emulator/fail-all"),
        ControlOperation(rules, "GET", "/_emulator/rules", result_key="rules"),
        ControlOperation(add_rule, "POST", "/_emulator/rules", extra=_RULE_PARAMS),
        ControlOperation(fail_next, "POST", "/_emulator/fail-next", extra=dataclass_params(Rule, _CRITERIA)),
        ControlOperation(clear_rules, "DELETE", "/_emulator/rules"),
        ControlOperation(advance_after, "POST", "/_emulator/advance-after"),
        ControlOperation(set_vdm, "POST", "/_emulator/vdm"),
        ControlOperation(set_volumes, "POST", "/_emulator/volumes"),
        ControlOperation(clear_volumes, "DELETE", "/_emulator/volumes"),
        ControlOperation(jobs, "GET", "/_emulator/jobs", result_key="jobs"),
        ControlOperation(complete_job, "POST", "/_emulator/jobs/{job_id}/complete"),
        ControlOperation(fail_job, "POST", "/_emulator/jobs/{job_id}/fail"),
        ControlOperation(delete_job, "DELETE", "/_emulator/jobs/{job_id}"),
        ControlOperation(expire_urls, "POST", "/_emulator/expire-urls", result_key="expired"),
        ControlOperation(issued_secrets, "GET", "/_emulator/issued-secrets", result_key="values"),
    )
}


def markdown_table() -> str:
    """The table of control operations in docs/emulator.md, rendered from :data:`OPERATIONS`."""
    lines = [
        "| Python (`SesExportEmulator`) | HTTP | CLI (`ses-export-emulator control ...`) | What it does |",
        "|---|---|---|---|",
    ]
    for op in OPERATIONS.values():
        params = ", ".join(
            f"{p.name}: {p.type_name}" + ("" if p.required or p in op.extra else f" = {p.default!r}") for p in op.params
        )
        python = f"`{op.name}({params})`".replace("|", "\\|")
        lines.append(f"| {python} | `{op.http_method} {op.path}` | `{op.cli_name}` | {op.description} |")
    return "\n".join(lines) + "\n"
