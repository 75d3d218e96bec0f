"""What each `metrolex` command does, on top of `bootstrap`."""
from __future__ import annotations

import html
import json
import sys
from pathlib import Path

from adapters.bootstrap import App, bootstrap
from adapters.cli import EXIT_INPUT, EXIT_OK, EXIT_PROBLEM, UsageError, _print_json, print_judgment_table
from adapters.compliance import Filters
from adapters.facts_file import FileError, read_facts_file
from adapters.timeparse import InputError, parse_day, parse_known_at
from rules.judgment import STATUSES


def _progress(label: str, enabled: bool):
    if not enabled:
        return None

    def report(done: int, total: int) -> None:
        if total >= 2000:  # small files load in a blink; say nothing
            end = "\n" if done == total else ""
            print(f"\r{label}: {done}/{total} facts", end=end, file=sys.stderr, flush=True)
    return report


def run(args) -> int:
    if args.command == "rules" and args.rules_command == "validate":
        return cmd_rules_validate(args)
    if args.command == "demo":
        from adapters.demo import run_demo
        return run_demo(args)
    app = bootstrap(store_url=args.store, engine=args.engine)
    try:
        handler = {
            "load": cmd_load, "check": cmd_check, "remind": cmd_remind, "simulate": cmd_simulate,
            "inbox": cmd_inbox, "deliver": cmd_deliver, "audit": cmd_audit, "plan": cmd_plan, "rules": cmd_rules,
            "serve": cmd_serve, "token": cmd_token,
        }[args.command]
        return handler(app, args)
    finally:
        app.close()


# -- load ----------------------------------------------------------------------------------------
def cmd_load(app: App, args) -> int:
    loaded: list[str] = []
    results = []
    for name in args.files:
        try:
            size = Path(name).stat().st_size if Path(name).exists() else 0
            if size > 512 * 1024 and not args.quiet and sys.stderr.isatty():
                print(f"reading {name} ({size / 1e6:.1f} MB)…", file=sys.stderr, flush=True)
            doc = read_facts_file(name)
            result = app.record.load(doc, actor="cli", progress=_progress(name, not args.quiet and sys.stderr.isatty()))
        except FileError as exc:
            before = f"; loaded before it: {', '.join(loaded)}" if loaded else "; no file was loaded"
            if args.json:
                _print_json({"loaded": [r.as_dict() for r in results], "refused": exc.as_dict()})
            print(f"metrolex: error: {exc} — nothing of {name} was stored{before}", file=sys.stderr)
            return EXIT_INPUT
        loaded.append(name)
        results.append(result)
        if not args.json:
            print(f"{name}: {result.recorded} recorded, {result.repeated} already recorded")
    if args.json:
        _print_json({"loaded": [r.as_dict() for r in results]})
    return EXIT_OK


# -- check ---------------------------------------------------------------------------------------
def _statuses(values: list[str] | None, what: str) -> set[str] | None:
    if not values:
        return None
    out = {s.strip() for v in values for s in v.split(",") if s.strip()}
    bad = out - set(STATUSES)
    if bad:
        raise InputError(f"{what}: unknown status {sorted(bad)[0]!r} (known: {', '.join(STATUSES)})")
    return out


def cmd_check(app: App, args) -> int:
    as_of = parse_day(args.as_of)
    known_at = parse_known_at(args.known_at)
    fail_on = _statuses([args.fail_on] if args.fail_on else None, "--fail-on")
    filters = Filters(units=set(args.unit or []) or None, rules=set(args.rule or []) or None,
                      statuses=_statuses(args.status, "--status"))
    judgments = app.compliance.check(as_of, known_at, filters, lang=args.lang)
    if args.json:
        # one judgment at a time (the same text as one json.dumps of the list), without the GC
        # walking the read model while hundreds of thousands of dicts are made
        from adapters.gcpause import paused_gc
        with paused_gc(keep=True):
            _print_json_array(j.to_json() for j in judgments)
    else:
        print(f"metrolex check — as of end of {as_of} (Asia/Shanghai)"
              + (f", knowing what was recorded by {args.known_at}" if args.known_at else ""))
        print_judgment_table(judgments)
    if fail_on and any(j.status in fail_on for j in judgments):
        return EXIT_PROBLEM
    return EXIT_OK


# -- remind / simulate / inbox ---------------------------------------------------------------------
def cmd_remind(app: App, args) -> int:
    as_of = parse_day(args.as_of)
    result = app.notices.sweep(as_of, by="remind")
    issued = [p.to_json() for p in result.issued]
    if args.json:
        _print_json(issued)
    else:
        if result.skipped:
            print(result.skipped)
        for p in result.issued:
            print(f"{p.kind:10} {p.rule:28} {p.subject:14} due {p.due}  → {p.recipient}")
        print(f"{len(issued)} issued, {result.already} already issued before")
    return EXIT_OK


def cmd_simulate(app: App, args) -> int:
    start, end = parse_day(args.start, "--from"), parse_day(args.end, "--to")
    if end < start:
        raise InputError("--to is before --from")
    progress = None
    if sys.stderr.isatty():
        def progress(done, total):
            print(f"\rsimulating: day {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)
    out = app.notices.simulate(start, end, progress)
    if args.json:
        _print_json(out)
    else:
        for n in out:
            print(f"{n['date']}  {n['kind']:10} {n['rule']:28} {n['subject']:14} due {n['due']} → {n['recipient']}")
        print(f"{len(out)} notices would be issued between {start} and {end} (nothing recorded)")
    return EXIT_OK


def cmd_deliver(app: App, args) -> int:
    from adapters.delivery import channels_from_settings, deliver_pending, requeue_dead
    if args.requeue_dead:
        requeue_dead(app)
    channels = channels_from_settings(app.settings)
    total: dict[str, int] = {"delivered": 0, "failed": 0, "dead": 0}
    while True:
        counts = deliver_pending(app, channels, app.clock())
        for k in total:
            total[k] += counts.get(k, 0)
        if sum(counts.values()) == 0:
            break
    if args.json:
        _print_json(total | {"channels": sorted(channels)})
    else:
        print(f"{total['delivered']} delivered, {total['failed']} failed (retried later), {total['dead']} dead "
              f"via {', '.join(sorted(channels)) or 'no channel (set METROLEX_SMTP_HOST for e-mail)'}")
    return EXIT_OK if total["dead"] == 0 else EXIT_PROBLEM


def cmd_inbox(app: App, args) -> int:
    items = app.notices.inbox(args.unit)
    if args.json:
        _print_json(items)
    else:
        for n in items:
            print(f"— {n['issued_at'][:10]} {n['kind']} ({n['rule']}, {n['subject']}, due {n['due']})")
            print("  " + n["message"][args.lang].replace("\n", "\n  "))
        print(f"{len(items)} notices for {args.unit}")
    return EXIT_OK


def _print_json_array(items) -> None:
    """A JSON array printed one element at a time, as `json.dumps(list, indent=2)` would print it."""
    out = sys.stdout
    first = True
    for item in items:
        out.write("[\n  " if first else ",\n  ")
        out.write(json.dumps(item, ensure_ascii=False, indent=2).replace("\n", "\n  "))
        first = False
    out.write("[]\n" if first else "\n]\n")


# -- audit ---------------------------------------------------------------------------------------
def cmd_audit(app: App, args) -> int:
    from adapters import audit
    c = args.audit_command
    if c == "replay":
        if args.json:
            from adapters.gcpause import paused_gc
            with paused_gc(keep=True):  # (read side: see adapters.gcpause)
                _, judgments = app.compliance.replay_stream(parse_day(args.as_of), parse_known_at(args.known_at),
                                                            lang=args.lang)
                _print_json_array(judgments)
        else:
            out = app.compliance.replay(parse_day(args.as_of), parse_known_at(args.known_at), lang=args.lang)
            from rules.judgment import Judgment
            used = {e["id"] for j in out["judgments"] for e in j["events"]}
            print(f"replay as of {args.as_of}, known at {args.known_at or 'now'}: {len(out['judgments'])} judgments "
                  f"resting on {len(used)} events")
            print_judgment_table([Judgment(**{k: v for k, v in j.items() if k in Judgment.__dataclass_fields__},
                                           provisional=j.get("provisional", False), values=j.get("values", {}))
                                  for j in out["judgments"]])
        return EXIT_OK
    if c == "verify":
        if args.against:
            try:
                head = audit.read_head(args.against)
            except ValueError as exc:
                raise InputError(str(exc)) from None
            result = audit.verify_against(app.store, head)
        else:
            result = audit.verify(app.store)
        if args.json:
            _print_json(result.as_dict())
        elif result.ok:
            print(f"record intact: {result.events} events verified")
        else:
            print(f"TAMPERING FOUND after {result.events} good events: {result.problem}")
        return EXIT_OK if result.ok else EXIT_PROBLEM
    if c == "recheck":
        from adapters.notices import recheck
        out = recheck(app)
        if args.json:
            _print_json(out)
        else:
            for r in out:
                print(f"{r['as_of']} known at {r['known_at']}: {'same' if r['same'] else 'DIFFERENT'}")
            print(f"{sum(r['same'] for r in out)} of {len(out)} recorded judgment sets replay identically")
        return EXIT_OK if all(r["same"] for r in out) else EXIT_PROBLEM
    if c == "seal":
        from adapters.store import format_instant
        head = audit.seal(app.store, format_instant(app.clock()))
        print(json.dumps(head, ensure_ascii=False, indent=None if not args.json else 2))
        return EXIT_OK
    if c == "history":
        from adapters.notices import recorded_judgments
        events = app.compliance.history(args.subject)
        notices = app.notices.issued(args.subject)
        judged = recorded_judgments(app, args.subject)
        if args.json:
            _print_json({"subject": args.subject, "events": events, "judgments": judged, "notices": notices})
        else:
            for e in events:
                mark = f"  (retracted by {e['retracted_by']})" if e["retracted_by"] else ""
                print(f"{e['date'] or '—':10}  recorded {e['recorded_at'][:19]}Z  {e['type']:28} {e['id']}{mark}")
            for j in judged:
                print(f"{j['as_of']:10}  judged   (known at {(j['known_at'] or '')[:19]}Z)  {j['rule']} {j['period']}: "
                      f"{j['status']} (due {j['due']})")
            for n in notices:
                print(f"{n['as_of']:10}  issued   {n['issued_at'][:19]}Z  {n['kind']:28} {n['rule']} due {n['due']}")
        return EXIT_OK
    if c == "explain":
        out = app.compliance.explain(parse_day(args.as_of), args.rule, args.subject, args.period,
                                     parse_known_at(args.known_at), args.lang)
        if not out:
            print(f"no judgment of {args.rule} for {args.subject} as of {args.as_of}", file=sys.stderr)
            return EXIT_PROBLEM
        if args.json:
            _print_json(out)
        else:
            for e in out:
                j, r = e["judgment"], e["rule"]
                print(f"{j['rule']} v{j['rule_version']} — {j['subject']} {j['period']}: {j['status']} (due {j['due']})")
                print(f"  依据 {r['citation']['document']} {r['citation']['clause']}: 「{r['quote']}」")
                print(f"  {e['computation']}")
                for ev in e["events"]:
                    print(f"  event {ev['id']} {ev['type']} {ev['date']} (recorded {ev['recorded_at'][:19]}Z)")
        return EXIT_OK
    if c == "export":
        return cmd_export(app, args)
    raise UsageError(c)


def cmd_export(app: App, args) -> int:
    from adapters.audit import export_csv, export_rows
    judgments = app.compliance.check(parse_day(args.as_of), parse_known_at(args.known_at))
    rows = export_rows(judgments)
    if args.format == "json":
        text = json.dumps({"as_of": args.as_of, "known_at": args.known_at, "judgments": rows}, ensure_ascii=False, indent=2)
    elif args.format == "csv":
        text = export_csv(rows)
    else:
        body = "".join(
            f"<tr class='{html.escape(r['status'])}'>" + "".join(f"<td>{html.escape(str(r[k]))}</td>" for k in
            ("unit", "rule", "subject", "period", "due", "status", "satisfied_on", "document", "clause", "explanation"))
            + "</tr>" for r in rows)
        text = ("<!doctype html><html lang='zh-CN'><meta charset='utf-8'><title>计量监管合规报告</title>"
                "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:4px}"
                ".met{background:#dfd}.met-late{background:#dff}.overdue{background:#ffd}.breached{background:#fdd}</style>"
                f"<h1>计量监管合规报告 — 截至 {html.escape(args.as_of)}</h1><table><tr>"
                + "".join(f"<th>{h}</th>" for h in ("单位", "规则", "对象", "期间", "截止", "状态", "履行日期", "依据", "条款", "说明"))
                + f"</tr>{body}</table></html>")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {len(rows)} judgments to {args.output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


# -- plan ----------------------------------------------------------------------------------------
def cmd_plan(app: App, args) -> int:
    from adapters.plans import bundled_path, import_plan, show_plan
    if args.plan_command == "import":
        if bool(args.file) == bool(args.bundled):
            raise UsageError("plan import takes a FILE or --bundled NAME (one of them)")
        path = bundled_path(args.bundled) if args.bundled else Path(args.file)
        fact, result = import_plan(app.record, path)
        if args.json:
            _print_json({"plan": fact.fields["key"], "tasks": len(fact.fields["tasks"])} | result.as_dict())
        else:
            state = "imported" if result.recorded else "already imported (nothing new)"
            print(f"plan {fact.fields['key']}: {len(fact.fields['tasks'])} tasks {state}")
        return EXIT_OK
    plan = show_plan(app.record, args.year, args.jurisdiction)
    if plan is None:
        print(f"no {args.jurisdiction} plan for {args.year} in the record "
              f"(import one: metrolex plan import --bundled shanghai-2023)", file=sys.stderr)
        return EXIT_PROBLEM
    if args.json:
        _print_json(plan)
    else:
        print(f"{plan['document'].get('title', '')} ({args.jurisdiction} {args.year})")
        for t in plan["tasks"]:
            print(f"{t['number']:>3}. [{t['group']}] {t['title']}  — {t['status']}")
            print(f"     牵头: {'、'.join(t['leads'])}")
            if t["supporting"]:
                print(f"     配合: {'、'.join(t['supporting'])}")
    return EXIT_OK


# -- rules ---------------------------------------------------------------------------------------
def cmd_rules(app: App, args) -> int:
    if args.rules_command == "list":
        versions = app.catalogue.versions
        if args.as_of:
            versions = app.catalogue.in_force(parse_day(args.as_of))
        out = [v.summary() for v in versions]
        if args.json:
            _print_json(out)
        else:
            for v in out:
                print(f"{v['id']:28} v{v['version']} {v['jurisdiction']:9} from {v['effective_from']} "
                      f"{'to ' + v['effective_to'] if v['effective_to'] else '':14} "
                      f"{v['citation']['document_key'] if 'document_key' in v['citation'] else ''} {v['citation']['clause']}")
        return EXIT_OK
    versions = app.catalogue.get(args.id)
    if not versions:
        print(f"no rule {args.id!r} (see metrolex rules list)", file=sys.stderr)
        return EXIT_INPUT
    if args.json:
        _print_json([v.raw for v in versions])
    else:
        for v in versions:
            print(Path(v.path).read_text(encoding="utf-8") if Path(v.path).exists() else json.dumps(v.raw, ensure_ascii=False, indent=2))
    return EXIT_OK


def cmd_rules_validate(args) -> int:
    from rules.catalogue import RuleFileError, parse_rule
    bad = 0
    for name in args.files:
        try:
            v = parse_rule(Path(name).read_text(encoding="utf-8"), name)
            print(f"{name}: ok ({v.id} v{v.version}, {v.jurisdiction}, template {v.template})")
        except FileNotFoundError:
            print(f"{name}: no such file", file=sys.stderr)
            bad += 1
        except RuleFileError as exc:
            print(str(exc), file=sys.stderr)
            bad += 1
    return EXIT_INPUT if bad else EXIT_OK


# -- tokens, serve, demo -------------------------------------------------------------------------------
def cmd_token(app: App, args) -> int:
    from adapters.tokens import create_token, revoke_token
    if args.token_command == "create":
        try:
            token = create_token(app.store, args.role, args.unit)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        print(f"# {args.role} token" + (f" for {args.unit}" if args.unit else "") + " (shown once; stored only as a hash)",
              file=sys.stderr)
        print(token)
        return EXIT_OK
    if revoke_token(app.store, args.token):
        print("revoked")
        return EXIT_OK
    print("no such active token", file=sys.stderr)
    return EXIT_PROBLEM


def cmd_serve(app: App, args) -> int:
    from adapters.service import serve
    return serve(app, args.host, args.port, scheduler=not args.no_scheduler)


