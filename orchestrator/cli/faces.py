"""Commands made from kinds' faces (`orchestrator.kinds.face`): `resolve-farm <command> ...` for every kind the farm
serves that declares a face, the farm's own (`render`, `edit`, `proxies`) and plugins' alike.

Each argument of the face becomes an option named after its field (`--output-name`) or as the
face names it (`--name`), or a positional where the face says so: a flag for a boolean
(`--no-audio` for one that is on unless turned off), repeatable for a list, repeatable
`KEY=VALUE` for an object of scalars, one JSON value for anything else; required when the field
is. A face that reads its arguments from a file takes the file as its one positional, options
over it. `--after`, `--wait` and `--json` as every submit command has. The values given are
checked by the face's model, then submitted as the kind's spec (`Face.spec`).

Note: the plugins are loaded to build the parser, from the settings as they are; settings that do
not load leave the plugins' faces out (the farm's own are there), and the command run reports them.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from orchestrator.cli.common import key_value, load_settings
from orchestrator.refusals import Refused, validation_errors

if TYPE_CHECKING:
    from orchestrator.kinds.face import Face


def add_commands(sub: Any) -> list[str]:
    """A subparser for each kind with a face whose command is not taken; the commands added."""
    from orchestrator import kinds

    try:
        plugins = load_settings().plugins
        kinds.load_plugins(plugins)
    except Refused:
        plugins = []  # the farm's own kinds still: running the command reports the settings
    added = []
    for name in kinds.served(plugins):
        face = kinds.get(name).face
        if face is None or face.command in sub.choices:
            continue
        p = sub.add_parser(face.command, help=face.title, description=face.description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        _add_arguments(p, face)
        p.add_argument("--after", action="append", metavar="JOB", help="start once this job succeeded (repeatable)")
        p.add_argument("--wait", action="store_true", help="follow the job to its end")
        p.add_argument("--json", action="store_true", help="stdout holds only the job record as JSON")
        p.set_defaults(func=partial(cmd_face, name))
        added.append(face.command)
    return added


def _add_arguments(p: argparse.ArgumentParser, face: Face) -> None:
    from orchestrator.kinds.face import shape

    if face.from_file:
        p.add_argument("file", help="the arguments as a JSON or YAML object ('-' reads stdin); options override it")
    for field, info in face.arguments.model_fields.items():
        found = shape(info.annotation)
        assert found is not None  # (a face checks its arguments' types)
        how, kind = found
        if field in face.positional:
            p.add_argument(field, type=kind or str, help=info.description)
            continue
        flag, help = face.option(field), info.description
        metavar = flag[2:].upper().replace("-", "_")
        required = info.is_required() and not face.from_file
        if how == "scalar" and kind is bool:
            if info.default is True:  # on unless turned off
                p.add_argument("--no-" + flag[2:], dest=field, action="store_false", default=None,
                               help=f"turn off: {help}")  # fmt: skip
            else:
                p.add_argument(flag, dest=field, action="store_true", default=None, help=help)
        elif how == "scalar":
            p.add_argument(flag, dest=field, type=kind or str, metavar=metavar, required=required, help=help)
        elif how == "list":
            p.add_argument(flag, dest=field, type=kind or str, action="append", metavar=metavar, required=required,
                           help=f"{help} (repeatable)")  # fmt: skip
        elif how == "mapping":
            p.add_argument(flag, dest=field, action="append", metavar="KEY=VALUE", required=required,
                           help=f"{help} (repeatable; values parse as JSON where they can)")  # fmt: skip
        else:
            p.add_argument(flag, dest=field, metavar="JSON", required=required, help=help)


def cmd_face(kind_name: str, args: argparse.Namespace) -> int:
    from orchestrator import kinds
    from orchestrator.cli.jobs import after_submit, read_spec, submit_spec

    face = kinds.get(kind_name).face
    assert face is not None
    given: dict[str, Any] = {}
    if face.from_file:
        given = read_spec(args.file, field=args.file)
        fields = face.arguments.model_fields
        if unknown := sorted(set(given) - set(fields)):
            raise Refused(args.file, f"{face.command} takes no {unknown[0]!r} (fields: {', '.join(fields)})")
    for field in face.arguments.model_fields:
        value = getattr(args, field)
        if value is not None:
            given[field] = _value(face, field, value)
    try:
        spec = face.spec(face.arguments.model_validate(given))
    except ValidationError as exc:
        where = exc.errors()[0]["loc"]  # (empty for an error of the whole model)
        raise Refused(_named(face, str(where[0]) if where else face.command), validation_errors(exc)) from None
    except Refused as exc:
        raise Refused(_named(face, exc.field), exc.reason) from None
    farm, record = submit_spec(kind_name, spec, args.after)
    return after_submit(farm, record, args)


def _value(face: Face, field: str, value: Any) -> Any:
    """An option's value as the model takes it: KEY=VALUE items as an object, JSON text parsed."""
    import json

    from orchestrator.kinds.face import shape

    how = (shape(face.arguments.model_fields[field].annotation) or ("json", None))[0]
    if how == "mapping":
        return dict(key_value(item, face.option(field)) for item in value)
    if how == "json":
        try:
            return json.loads(value)
        except ValueError as exc:
            raise Refused(face.option(field), f"not JSON ({exc})") from None
    return value


def _named(face: Face, field: str) -> str:
    """How the command line names an argument: its option, or its name for a positional or a file's field."""
    if field in face.arguments.model_fields and field not in face.positional and not face.from_file:
        return face.option(field)
    return field
