"""Delivering notices for real: an SMTP server (aiosmtpd) and an HTTP receiver on loopback, a real
store, facts loaded and swept into the outbox, then `deliver_pending` with the clock passed in."""
from __future__ import annotations

import datetime as dt
import json
import socket
import threading
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from adapters import audit
from adapters.bootstrap import bootstrap
from adapters.delivery import (IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, EmailChannel,
                               WebhookChannel, backoff_seconds, deliver_pending, outbox_rows, requeue_dead,
                               verify_signature)
from adapters.facts_file import read_facts_file
from adapters.settings import Settings
from adapters.store import outbox
from domain.notice import Notice

SECRET = "hook-secret-测试"
KEY = "center-major-event|v1|c-icv|2023-09-28|ev-me1|overdue|0"
SWEEP_DAY = dt.date(2023, 10, 16)
T0 = dt.datetime(2023, 10, 16, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp()
SUBJECT = "【metrolex】逾期通知 center-major-event c-icv"

FACTS = """\
units:
  - {{id: sh-jlc, name: 市局计量处, kind: regulator, email: jlc@example.test}}
  - {{id: sh-zjy, name: 上海市质量监督检验技术研究院, kind: institute, email: x@example.test, webhook: "{hook}"}}
centers:
  - {{id: c-icv, name: 上海市智能网联汽车产业计量测试中心, host: sh-zjy}}
events:
  - {{type: center-approved, date: 2023-06-01, center: c-icv, construction_years: 2}}
  - {{id: ev-me1, type: center-major-event, date: 2023-09-28, center: c-icv, summary: 主任变更}}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- a real SMTP server -------------------------------------------------------------------------
class MailSink:
    def __init__(self) -> None:
        self.messages: list[dict] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "message": message_from_bytes(envelope.original_content, policy=default_policy)})
        return "250 OK"


def _start_smtp(handler, **kw) -> Controller:
    last: Exception | None = None
    for _ in range(5):  # a free port can be taken between asking and binding
        controller = Controller(handler, hostname="127.0.0.1", port=_free_port(), **kw)
        try:
            controller.start()
            return controller
        except Exception as exc:  # pragma: no cover - port race
            last = exc
    raise RuntimeError(f"could not start the SMTP server: {last}")


@pytest.fixture
def smtp():
    sink = MailSink()
    controller = _start_smtp(sink)
    sink.port = controller.port
    yield sink
    controller.stop()


# -- a real webhook receiver --------------------------------------------------------------------
class HookReceiver:
    """Verifies each request's HMAC and records it; answers with `status` (the test changes it)."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.status = 200
        self.requests: list[dict] = []
        self.gate: threading.Event | None = None  # when set, requests wait for it (a slow server)
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver.status
                receiver.requests.append({
                    "path": self.path, "body": body, "status": status,
                    "valid": verify_signature(receiver.secret, body, self.headers.get(SIGNATURE_HEADER)),
                    "signature": self.headers.get(SIGNATURE_HEADER),
                    "key": self.headers.get(IDEMPOTENCY_HEADER),
                    "timestamp": self.headers.get(TIMESTAMP_HEADER),
                    "content_type": self.headers.get("Content-Type")})
                receiver.arrived.set()
                if receiver.gate is not None:
                    receiver.gate.wait(30)
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def accepted(self) -> list[dict]:
        return [r for r in self.requests if 200 <= r["status"] < 300]


@pytest.fixture
def hook():
    receiver = HookReceiver(SECRET)
    receiver.thread.start()
    yield receiver
    if receiver.gate is not None:
        receiver.gate.set()
    receiver.server.shutdown()
    receiver.server.server_close()


# -- a real store with an overdue obligation swept into the outbox ------------------------------
def _settings(smtp_port: int, **kw) -> Settings:
    return Settings(smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_sender="metrolex@sh-metrology.example",
                    webhook_secret=SECRET, **kw)


def _swept_app(url: str, tmp_path, hook_url: str, settings: Settings):
    app = bootstrap(settings, store_url=url, engine="reference")
    facts = tmp_path / "facts.yaml"
    facts.write_text(FACTS.format(hook=hook_url), encoding="utf-8")
    app.record.load(read_facts_file(facts))
    swept = app.notices.sweep(SWEEP_DAY)
    assert [p.key for p in swept.issued] == [KEY]
    return app


@pytest.fixture
def app(tmp_path, smtp, hook):
    app = _swept_app(f"sqlite:///{tmp_path}/t.db", tmp_path, hook.url, _settings(smtp.port))
    yield app
    app.close()


def _channels(app) -> dict:
    return {"email": EmailChannel(app.settings, timeout=5), "webhook": WebhookChannel(SECRET, timeout=5)}


def _row(app, channel: str) -> dict:
    rows = [r for r in outbox_rows(app, KEY) if r["channel"] == channel]
    assert len(rows) == 1
    return rows[0]


def _notice(app, version: int | None = None) -> Notice:
    return app.store.app.repository.get(Notice.create_id(KEY), version=version)


# -- the tests ----------------------------------------------------------------------------------
def test_the_sweep_puts_one_row_per_channel_and_address_in_the_outbox(app, hook):
    rows = outbox_rows(app)
    assert {(r["channel"], r["address"], r["status"], r["attempts"]) for r in rows} == {
        ("email", "x@example.test", "pending", 0), ("webhook", hook.url, "pending", 0)}


def test_a_notice_is_mailed_and_posted_once_and_the_record_says_so(tmp_path, smtp, hook, store_url):
    """On SQLite and (where reachable) on PostgreSQL, whose triggers keep the record append-only."""
    app = _swept_app(store_url, tmp_path, hook.url, _settings(smtp.port))
    try:
        assert deliver_pending(app, _channels(app), now=T0) == {"delivered": 2, "failed": 0, "dead": 0}

        assert len(smtp.messages) == 1
        mail = smtp.messages[0]
        assert mail["to"] == ["x@example.test"] and mail["from"] == "metrolex@sh-metrology.example"
        msg = mail["message"]
        assert msg["Subject"] == SUBJECT
        assert msg[IDEMPOTENCY_HEADER] == KEY
        assert msg["Message-ID"].startswith("<notice.")
        body = msg.get_content().replace("\r\n", "\n")
        assert body.index("【逾期通知】") < body.index("[Overdue]")
        assert "主任变更" in body

        assert len(hook.requests) == 1
        req = hook.requests[0]
        assert req["valid"] is True
        assert req["key"] == KEY and req["content_type"] == "application/json"
        assert abs(int(req["timestamp"]) - dt.datetime.now().timestamp()) < 300
        sent = json.loads(req["body"])
        assert sent["key"] == KEY and sent["message"]["zh"].startswith("【逾期通知】")
        assert not verify_signature("another-secret", req["body"], req["signature"])

        assert {r["channel"]: (r["status"], r["attempts"]) for r in outbox_rows(app)} == {
            "email": ("delivered", 1), "webhook": ("delivered", 1)}
        notice = _notice(app)
        assert notice.deliveries == {"email:x@example.test": "delivered", f"webhook:{hook.url}": "delivered"}
        assert notice.version == 3  # Issued, Delivered, Delivered

        # Again, much later: nothing is due, nothing is sent, nothing is recorded.
        assert deliver_pending(app, _channels(app), now=T0 + 30 * 86400) == {"delivered": 0, "failed": 0, "dead": 0}
        assert len(smtp.messages) == 1 and len(hook.requests) == 1
        assert _notice(app).version == 3
        # A second sweep of the same day issues nothing and so queues nothing.
        assert app.notices.sweep(SWEEP_DAY).issued == []
        assert len(outbox_rows(app)) == 2
        assert audit.verify(app.store).ok
    finally:
        app.close()


def test_a_failing_webhook_is_retried_with_backoff_and_then_delivered_exactly_once(app, smtp, hook):
    hook.status = 500
    assert deliver_pending(app, _channels(app), now=T0) == {"delivered": 1, "failed": 1, "dead": 0}
    assert len(smtp.messages) == 1
    row = _row(app, "webhook")
    assert row["status"] == "pending" and row["attempts"] == 1
    assert row["next_attempt_at"] == T0 + 60
    assert "HTTP 500" in row["last_error"]
    assert _notice(app).deliveries[f"webhook:{hook.url}"] == "failed:1"

    # Before the backoff has passed, nothing is sent (the scheduler passes an aware datetime).
    almost = dt.datetime.fromtimestamp(T0 + 59, dt.timezone.utc)
    assert deliver_pending(app, _channels(app), now=almost) == {"delivered": 0, "failed": 0, "dead": 0}
    assert len(hook.requests) == 1

    # Still failing at the first retry: the next one is two minutes later.
    assert deliver_pending(app, _channels(app), now=T0 + 60) == {"delivered": 0, "failed": 1, "dead": 0}
    row = _row(app, "webhook")
    assert row["attempts"] == 2 and row["next_attempt_at"] == T0 + 60 + 120

    hook.status = 200
    assert deliver_pending(app, _channels(app), now=T0 + 180) == {"delivered": 1, "failed": 0, "dead": 0}
    assert deliver_pending(app, _channels(app), now=T0 + 86400) == {"delivered": 0, "failed": 0, "dead": 0}
    assert len(hook.accepted()) == 1 and len(hook.requests) == 3
    assert all(r["valid"] and r["key"] == KEY for r in hook.requests)
    assert len({r["body"] for r in hook.requests}) == 1  # every attempt carries the same signed body
    assert len(smtp.messages) == 1

    row = _row(app, "webhook")
    assert row["status"] == "delivered" and row["attempts"] == 3
    # Issued, Delivered (email), DeliveryFailed ×2, Delivered (webhook), in that order.
    assert _notice(app).version == 5
    assert _notice(app, version=3).deliveries[f"webhook:{hook.url}"] == "failed:1"
    assert _notice(app, version=4).deliveries[f"webhook:{hook.url}"] == "failed:2"
    assert _notice(app).deliveries[f"webhook:{hook.url}"] == "delivered"
    assert audit.verify(app.store).ok


def test_after_max_attempts_a_row_is_dead_until_requeued(app, hook):
    hook.status = 503
    webhook_only = {"webhook": WebhookChannel(SECRET, timeout=5)}
    now = T0
    outcomes = []
    for attempt in range(1, 4):
        outcomes.append(deliver_pending(app, webhook_only, now=now, max_attempts=3))
        row = _row(app, "webhook")
        assert row["attempts"] == attempt
        if attempt < 3:
            assert row["status"] == "pending"
            assert row["next_attempt_at"] == now + backoff_seconds(attempt)
            now = row["next_attempt_at"]
    assert outcomes == [{"delivered": 0, "failed": 1, "dead": 0}] * 2 + [{"delivered": 0, "failed": 0, "dead": 1}]
    row = _row(app, "webhook")
    assert row["status"] == "dead" and "HTTP 503" in row["last_error"]
    # The e-mail row was never claimed: no e-mail channel was given.
    assert _row(app, "email")["status"] == "pending" and _row(app, "email")["attempts"] == 0

    # Dead rows are kept and never sent again by themselves...
    hook.status = 200
    assert deliver_pending(app, webhook_only, now=now + 10 * 86400, max_attempts=3)["delivered"] == 0
    assert len(hook.requests) == 3
    with app.store.reading() as s:
        assert s.execute(select(outbox.c.status).where(outbox.c.channel == "webhook")).scalar() == "dead"

    # ...until someone requeues them.
    assert requeue_dead(app) == 1
    assert requeue_dead(app) == 0
    row = _row(app, "webhook")
    assert row["status"] == "pending" and row["attempts"] == 0
    assert deliver_pending(app, webhook_only, now=now + 10 * 86400, max_attempts=3) == {
        "delivered": 1, "failed": 0, "dead": 0}
    assert len(hook.accepted()) == 1
    assert _row(app, "webhook")["status"] == "delivered"

    notice = _notice(app)
    assert notice.version == 1 + 3 + 1  # Issued, DeliveryFailed ×3, Delivered
    assert _notice(app, version=4).deliveries == {f"webhook:{hook.url}": "failed:3"}
    assert notice.deliveries == {f"webhook:{hook.url}": "delivered"}
    assert audit.verify(app.store).ok


def test_a_slow_receiver_does_not_hold_the_stores_write_lock(app, hook, tmp_path):
    hook.gate = threading.Event()
    result: dict = {}
    sender = threading.Thread(target=lambda: result.update(
        deliver_pending(app, {"webhook": WebhookChannel(SECRET, timeout=20)}, now=T0)), daemon=True)
    sender.start()
    try:
        assert hook.arrived.wait(10), "the webhook was never called"
        # While the POST hangs, the record takes a new fact in its own write transaction.
        more = tmp_path / "more.yaml"
        more.write_text("events:\n  - {type: center-major-event-notified, date: 2023-10-17, center: c-icv, "
                        "refers_to: ev-me1}\n", encoding="utf-8")
        loaded: dict = {}
        writer = threading.Thread(target=lambda: loaded.update(
            recorded=app.record.load(read_facts_file(more)).recorded), daemon=True)
        writer.start()
        writer.join(10)
        assert loaded.get("recorded") == 1, "a write waited for the webhook: the send held the write lock"
    finally:
        hook.gate.set()
    sender.join(30)
    assert result == {"delivered": 1, "failed": 0, "dead": 0}
    assert _row(app, "webhook")["status"] == "delivered"
    assert audit.verify(app.store).ok


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
def test_smtp_login_is_used_when_credentials_are_given(tmp_path, hook):
    seen: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        seen.append((auth_data.login, auth_data.password))
        ok = (auth_data.login, auth_data.password) == (b"metrolex", b"s3cret-pw")
        return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

    sink = MailSink()
    controller = _start_smtp(sink, authenticator=authenticator, auth_required=True, auth_require_tls=False)
    app = _swept_app(f"sqlite:///{tmp_path}/auth.db", tmp_path, hook.url,
                     _settings(controller.port, smtp_user="metrolex", smtp_password="wrong"))
    try:
        email_only = {"email": EmailChannel(app.settings, timeout=5)}
        assert deliver_pending(app, email_only, now=T0) == {"delivered": 0, "failed": 1, "dead": 0}
        assert sink.messages == [] and set(seen) == {(b"metrolex", b"wrong")}
        assert "SMTPAuthenticationError" in _row(app, "email")["last_error"]

        app.settings.smtp_password = "s3cret-pw"
        email_only = {"email": EmailChannel(app.settings, timeout=5)}
        assert deliver_pending(app, email_only, now=T0 + 60) == {"delivered": 1, "failed": 0, "dead": 0}
        assert seen[-1] == (b"metrolex", b"s3cret-pw")
        assert len(sink.messages) == 1 and sink.messages[0]["message"]["Subject"] == SUBJECT
        assert _notice(app).deliveries == {"email:x@example.test": "delivered"}
        assert audit.verify(app.store).ok
    finally:
        app.close()
        controller.stop()


def test_an_unreachable_mail_server_is_a_failed_attempt(tmp_path, hook):
    app = _swept_app(f"sqlite:///{tmp_path}/down.db", tmp_path, hook.url, _settings(_free_port()))
    try:
        counts = deliver_pending(app, {"email": EmailChannel(app.settings, timeout=5)}, now=T0)
        assert counts == {"delivered": 0, "failed": 1, "dead": 0}
        row = _row(app, "email")
        assert row["status"] == "pending" and row["next_attempt_at"] == T0 + 60
        assert "Connection" in row["last_error"] or "refused" in row["last_error"].lower()
        assert _notice(app).deliveries == {"email:x@example.test": "failed:1"}
    finally:
        app.close()
