"""Commands made from kinds' faces (`orchestrator.kinds.face`): `resolve-farm <command> --field ...` for every
registered kind that declares a face and has no hand-written command, plugins' kinds included.

Each argument of the face becomes an option named after its field (`--output-name`): a flag for a
boolean, repeatable for a list, required when the field is; `--after`, `--wait` and `--json` as
every submit command has. The values given are checked by the face's model, then submitted as
the kind's spec (`Face.spec`).

Note: the plugins are loaded to build the parser, from the settings as they are; settings that do
not load leave the faces out, and the command run reports them.
"""

from __future__ import annotations

import argparse
from functools import partial
from typing import Any

from pydantic import ValidationError

from orchestrator.cli.common import load_settings
from orchestrator.refusals import Refused, validation_errors


def add_commands(sub: Any) -> list[str]:
    """A subparser for each kind with a face whose command is not taken; the commands added."""
    from orchestrator import kinds
    from orchestrator.kinds.face import scalar

    try:
        plugins = load_settings().plugins
        kinds.load_plugins(plugins)
    except (Refused, ImportError):
        return []
    added = []
    for name in kinds.served(plugins):
        face = kinds.get(name).face
        if face is None or face.command in sub.choices:
            continue
        p = sub.add_parser(face.command, help=face.title, description=face.description,
                           formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        for field, info in face.arguments.model_fields.items():
            found = scalar(info.annotation)
            assert found is not None  # (a face checks its arguments are flat)
            kind, many = found
            flag, help = "--" + field.replace("_", "-"), info.description
            if kind is bool and not many:
                p.add_argument(flag, dest=field, action="store_true", default=None, help=help)
            else:
                p.add_argument(flag, dest=field, type=kind, action="append" if many else "store",
                               required=info.is_required(), help=help)  # fmt: skip
        p.add_argument("--after", action="append", metavar="JOB", help="start once this job succeeded (repeatable)")
        p.add_argument("--wait", action="store_true", help="follow the job to its end")
        p.add_argument("--json", action="store_true", help="stdout holds only the job record as JSON")
        p.set_defaults(func=partial(cmd_face, name))
        added.append(face.command)
    return added


def cmd_face(kind_name: str, args: argparse.Namespace) -> int:
    from orchestrator import kinds
    from orchestrator.cli.jobs import after_submit, submit_spec

    face = kinds.get(kind_name).face
    assert face is not None
    given = {field: getattr(args, field) for field in face.arguments.model_fields if getattr(args, field) is not None}
    try:
        arguments = face.arguments.model_validate(given)
    except ValidationError as exc:
        raise Refused("--" + str(exc.errors()[0]["loc"][0]).replace("_", "-"), validation_errors(exc)) from None
    farm, record = submit_spec(kind_name, face.spec(arguments), args.after)
    return after_submit(farm, record, args)
