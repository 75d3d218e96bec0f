"""`metrolex` — the command line (shared/CONTRACT.md is its public interface).

Entry points only parse, call one service, print, and map errors to exit codes:
0 success, 1 the command found a problem it reports, 2 bad input or usage (nothing stored).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_PROBLEM, EXIT_INPUT = 0, 1, 2
STATUS_COLORS = {"met": "32", "met-late": "36", "open": "37", "overdue": "33", "breached": "31"}


from adapters.timeparse import InputError as UsageError  # noqa: E402  (one class, however cli is run)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse exits 2 on usage errors already; keep its message
        self.print_usage(sys.stderr)
        print(f"metrolex: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="metrolex", description="Event-sourced rules engine and scheduler for metrology administration (计量监管).")
    p.add_argument("--store", help="store URL (default: $METROLEX_STORE or sqlite:///metrolex.db)")
    p.add_argument("--engine", choices=("durable", "reference"), default=os.environ.get("METROLEX_ENGINE", "durable"),
                   help="judging engine (default durable_rules; reference = plain Python)")
    p.add_argument("-v", "--verbose", action="store_true", help="log to stderr")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("load", help="append facts files to the record (one transaction per file)")
    s.add_argument("files", nargs="+", metavar="FILE")
    s.add_argument("--json", action="store_true")
    s.add_argument("--quiet", action="store_true", help="no progress output")

    def judgment_opts(s: argparse.ArgumentParser, json_required: bool = False) -> None:
        s.add_argument("--as-of", required=True, metavar="DATE")
        s.add_argument("--known-at", metavar="TIMESTAMP")
        s.add_argument("--json", action="store_true", required=False)
        s.add_argument("--lang", choices=("zh", "en"), default="zh")

    s = sub.add_parser("check", help="judge every obligation instance as of a date")
    judgment_opts(s)
    s.add_argument("--fail-on", metavar="STATUSES", help="exit 1 when a judgment has one of these statuses")
    s.add_argument("--unit", action="append", help="only this unit (or subject); repeatable")
    s.add_argument("--rule", action="append", help="only this rule; repeatable")
    s.add_argument("--status", action="append", help="only this status; repeatable")

    s = sub.add_parser("remind", help="issue the reminders and overdue notices due up to a date")
    s.add_argument("--as-of", required=True, metavar="DATE")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("deliver", help="send the notices waiting in the outbox (e-mail, webhook) once")
    s.add_argument("--requeue-dead", action="store_true", help="give dead deliveries a new round of tries first")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("simulate", help="preview what the scheduler would issue day by day (records nothing)")
    s.add_argument("--from", dest="start", required=True, metavar="DATE")
    s.add_argument("--to", dest="end", required=True, metavar="DATE")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("inbox", help="the notices addressed to a unit")
    s.add_argument("unit")
    s.add_argument("--json", action="store_true")
    s.add_argument("--lang", choices=("zh", "en"), default="zh")

    a = sub.add_parser("audit", help="replay, explain, verify, seal, export").add_subparsers(
        dest="audit_command", required=True, parser_class=_Parser)
    s = a.add_parser("replay", help="what check said on a date knowing only what was recorded by a time")
    judgment_opts(s)
    s = a.add_parser("verify", help="check the record's hash chain (exit 1 on tampering)")
    s.add_argument("--against", metavar="HEAD", help="a sealed tree head (JSON file or text) to verify against")
    s.add_argument("--json", action="store_true")
    s = a.add_parser("recheck", help="replay every recorded sweep's judgments and compare (exit 1 on a difference)")
    s.add_argument("--json", action="store_true")
    s = a.add_parser("seal", help="print the Merkle tree head of the record, to keep outside the system")
    s.add_argument("--json", action="store_true")
    s = a.add_parser("history", help="every event and notice about a subject, with both times")
    s.add_argument("subject")
    s.add_argument("--json", action="store_true")
    s = a.add_parser("explain", help="explain one judgment: rule, citation, events, computation")
    judgment_opts(s)
    s.add_argument("--rule", required=True)
    s.add_argument("--subject", required=True)
    s.add_argument("--period", help="the instance's period or trigger id")
    s = a.add_parser("export", help="compliance report per unit and rule")
    s.add_argument("--as-of", required=True, metavar="DATE")
    s.add_argument("--known-at", metavar="TIMESTAMP")
    s.add_argument("--format", choices=("csv", "json", "html"), default="json")
    s.add_argument("--output", "-o", metavar="FILE")

    pl = sub.add_parser("plan", help="annual work plans").add_subparsers(dest="plan_command", required=True,
                                                                        parser_class=_Parser)
    s = pl.add_parser("import", help="import a work plan data file")
    s.add_argument("file", nargs="?")
    s.add_argument("--bundled", metavar="NAME", help="a plan shipped with metrolex (shanghai-2023)")
    s.add_argument("--json", action="store_true")
    s = pl.add_parser("show", help="show a year's plan")
    s.add_argument("year", type=int)
    s.add_argument("--jurisdiction", default="shanghai", choices=("shanghai", "jiangsu"))
    s.add_argument("--json", action="store_true")

    r = sub.add_parser("rules", help="rule versions").add_subparsers(dest="rules_command", required=True,
                                                                    parser_class=_Parser)
    s = r.add_parser("list")
    s.add_argument("--json", action="store_true")
    s.add_argument("--as-of", metavar="DATE", help="only versions in force on this date")
    s = r.add_parser("show")
    s.add_argument("id")
    s.add_argument("--json", action="store_true")
    s = r.add_parser("validate", help="validate rule files, reporting the line of every error")
    s.add_argument("files", nargs="+", metavar="FILE")

    s = sub.add_parser("demo", help="run the main job end to end on an embedded store")
    s.add_argument("--from", dest="start", default="2023-01-01")
    s.add_argument("--to", dest="end", default="2024-12-31")
    s.add_argument("--json", action="store_true")

    s = sub.add_parser("serve", help="run the scheduler and the HTTP API")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--no-scheduler", action="store_true", help="API only (e.g. extra workers)")

    t = sub.add_parser("token", help="API bearer tokens").add_subparsers(dest="token_command", required=True,
                                                                        parser_class=_Parser)
    s = t.add_parser("create")
    s.add_argument("--role", required=True, choices=("division", "agency", "auditor"))
    s.add_argument("--unit")
    s = t.add_parser("revoke")
    s.add_argument("token")
    return p


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=2))


def _color(text: str, status: str) -> str:
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        return text
    return f"\033[{STATUS_COLORS.get(status, '0')}m{text}\033[0m"


def print_judgment_table(judgments: list) -> None:
    from rules.judgment import count_by_status
    if not judgments:
        print("no obligation instances")
        return
    by_unit: dict[str, list] = {}
    for j in judgments:
        by_unit.setdefault(j.unit or j.subject, []).append(j)
    for unit in sorted(by_unit):
        print(f"\n{unit}")
        for j in by_unit[unit]:
            prov = " (provisional)" if j.provisional else ""
            sat = f" fulfilled {j.satisfied_on}" if j.satisfied_on else ""
            print(f"  {j.rule:28} {j.subject:14} {j.period:11} due {j.due}{prov}  "
                  f"{_color(f'{j.status:9}', j.status)}{sat}")
    counts = count_by_status(judgments)
    print("\n" + "  ".join(f"{k}: {v}" for k, v in counts.items()))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from adapters.logging_setup import configure_logging
    configure_logging(json_lines=args.command == "serve", level="INFO" if args.verbose or args.command == "serve" else "WARNING")
    from adapters import commands
    from adapters.facts_file import FileError
    from adapters.timeparse import InputError
    from rules.catalogue import RuleFileError
    try:
        return commands.run(args)
    except (FileError, InputError, RuleFileError) as exc:
        print(f"metrolex: error: {exc}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the store cannot be reached or opened: say which and why, briefly
        from sqlalchemy.exc import DBAPIError, OperationalError
        if isinstance(exc, (OperationalError, DBAPIError)):
            reason = [line for line in str(getattr(exc, "orig", exc)).strip().splitlines() if line.strip()]
            store = args.store or os.environ.get("METROLEX_STORE") or "sqlite:///metrolex.db"
            print(f"metrolex: error: cannot use the store {store}: {' '.join(x.strip() for x in reason) or exc}",
                  file=sys.stderr)
            return EXIT_INPUT
        raise
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
