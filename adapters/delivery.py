"""Delivering issued notices: the outbox worker and its channels (SMTP e-mail, signed webhooks).

`NoticeService.sweep()` records each notice and, in the same transaction, one `outbox` row per
(notice, channel, address). `deliver_pending()` drains that outbox:

1. **claim** — in a short write transaction, pick due rows (`status = 'pending'`,
   `next_attempt_at <= now`, a channel we were given) and lease them by moving `next_attempt_at`
   to `now + lease_seconds`, so another worker leaves them alone while they are in flight and a
   worker that dies mid-send only delays them;
2. **send** — with no transaction open, so a slow or dead server never holds the store's write lock;
3. **record** — one short write transaction per row: the outbox row's new state and the Notice
   aggregate's `Delivered` / `DeliveryFailed` event (with its hash-chain link) commit together.

Delivery is at least once: a crash between a send and its record sends again later. Every
message therefore carries the notice's idempotency key (`X-Metrolex-Idempotency-Key`; for e-mail
also a `Message-ID` derived from it) so receivers can drop repeats. A row marked `delivered` is
never claimed again. After `max_attempts` failures a row is `dead` (kept, never deleted);
`requeue_dead()` gives it a fresh round of attempts.

The outbox is operational state, so its rows are updated in place; the record tables are not.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY, EmailPolicy
from email.utils import formatdate
from typing import Any, Callable, Protocol
from urllib.parse import quote

import structlog
from sqlalchemy import select, update

from adapters.store import outbox
from domain.notice import Notice

IDEMPOTENCY_HEADER = "X-Metrolex-Idempotency-Key"
SIGNATURE_HEADER = "X-Metrolex-Signature"
TIMESTAMP_HEADER = "X-Metrolex-Timestamp"
SIGNATURE_PREFIX = "sha256="

BACKOFF_BASE_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 6 * 3600.0
DEFAULT_LEASE_SECONDS = 3600.0
MAX_ERROR_CHARS = 500

KIND_WORDS = {"reminder": "到期提醒", "overdue": "逾期通知", "escalated": "逾期上报"}


class DeliveryError(Exception):
    """A channel could not hand a notice over (the attempt counts as failed)."""


@dataclass(frozen=True)
class Delivery:
    """One claimed outbox row: one notice to one address over one channel."""

    id: int
    notice_key: str
    channel: str
    address: str
    payload_text: str
    attempts: int = 0
    lease_until: float = 0.0

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.payload_text)

    @property
    def attempt(self) -> int:
        """The number of the attempt being made now (1 for the first)."""
        return self.attempts + 1


class Channel(Protocol):
    def send(self, delivery: Delivery) -> None:
        """Hand the notice over; raise on any failure."""


# -- backoff and signatures ---------------------------------------------------------------------
def backoff_seconds(attempts: int) -> float:
    """Delay before the next attempt after `attempts` failed ones: 60 s · 2^(attempts−1), ≤ 6 h."""
    if attempts < 1:
        raise ValueError(f"attempts must be at least 1, got {attempts}")
    if attempts > 64:  # 2**63 minutes is far past the cap; avoid building huge ints
        return BACKOFF_CAP_SECONDS
    return min(BACKOFF_BASE_SECONDS * 2 ** (attempts - 1), BACKOFF_CAP_SECONDS)


def _secret_bytes(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def sign(secret: str | bytes, body: bytes) -> str:
    """The `X-Metrolex-Signature` value: `sha256=` + hex HMAC-SHA256 of the exact body bytes."""
    return SIGNATURE_PREFIX + hmac.new(_secret_bytes(secret), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str | bytes, body: bytes, header: str | None) -> bool:
    """For receivers: does `header` (`sha256=<hex>`) sign exactly `body` with `secret`?

    Constant-time comparison; a missing or malformed header is simply not valid."""
    if not isinstance(header, str) or not header.startswith(SIGNATURE_PREFIX):
        return False
    if not isinstance(body, (bytes, bytearray, memoryview)):
        return False
    given = header[len(SIGNATURE_PREFIX):].strip().lower()
    expected = sign(secret, bytes(body))[len(SIGNATURE_PREFIX):]
    return hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii"))


def header_safe_key(notice_key: str) -> str:
    """The idempotency key as a header value: unchanged when ASCII, else percent-encoded UTF-8
    (HTTP header values are ASCII; the JSON body always carries the key as it is)."""
    return notice_key if notice_key.isascii() else quote(notice_key, safe="".join(
        chr(c) for c in range(0x21, 0x7F) if chr(c) != "%"))


# -- e-mail -------------------------------------------------------------------------------------
def email_subject(payload: dict[str, Any]) -> str:
    """e.g. `【metrolex】逾期通知 center-major-event c-icv`."""
    kind = "escalated" if payload.get("escalated_to") else payload.get("kind", "")
    word = KIND_WORDS.get(kind, kind or "通知")
    return f"【metrolex】{word} {payload.get('rule', '')} {payload.get('subject', '')}".strip()


def email_body(payload: dict[str, Any]) -> str:
    """The notice text in Chinese, then in English, then the notice key."""
    message = payload.get("message") or {}
    zh = (message.get("zh") or payload.get("explanation") or "").rstrip()
    en = (message.get("en") or "").rstrip()
    parts = [zh]
    if en:
        parts += ["", "——", en]
    parts += ["", f"通知编号 / Notice key: {payload.get('key', '')}", ""]
    return "\n".join(parts)


def message_id(notice_key: str, sender: str) -> str:
    """The same notice has the same Message-ID at every attempt (receivers can drop repeats)."""
    domain = sender.rsplit("@", 1)[1].strip(" >") if "@" in sender else "metrolex.invalid"
    digest = hashlib.sha256(notice_key.encode("utf-8")).hexdigest()[:40]
    return f"<notice.{digest}@{domain or 'metrolex.invalid'}>"


class _MailPolicy(EmailPolicy):
    """RFC 5322 with one exception: identifiers (Message-ID, the idempotency key) stay on one line
    when they are ASCII (lines may run to 998 octets), so no receiver sees a folded key."""

    unfolded = ("message-id", IDEMPOTENCY_HEADER.lower())

    def _keep(self, name: str, value) -> bool:
        text = str(value)
        return name.lower() in self.unfolded and text.isascii() and "\n" not in text and len(name) + len(text) < 990

    def fold(self, name, value):
        return f"{name}: {value}{self.linesep}" if self._keep(name, value) else super().fold(name, value)

    def fold_binary(self, name, value):
        if self._keep(name, value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        return super().fold_binary(name, value)


MAIL_POLICY = _MailPolicy() + SMTP_POLICY


class EmailChannel:
    """Sends a notice over SMTP (STARTTLS when configured, login when credentials are given)."""

    name = "email"

    def __init__(self, settings, timeout: float = 30.0, ssl_context: ssl.SSLContext | None = None) -> None:
        self.host = settings.smtp_host
        self.port = int(settings.smtp_port)
        self.starttls = bool(settings.smtp_starttls)
        self.user = settings.smtp_user
        self.password = settings.smtp_password
        self.sender = settings.smtp_sender
        self.timeout = timeout
        self.ssl_context = ssl_context

    def build_message(self, delivery: Delivery, date: float | None = None) -> EmailMessage:
        payload = delivery.payload
        msg = EmailMessage(policy=MAIL_POLICY)
        msg["From"] = self.sender
        msg["To"] = delivery.address
        msg["Subject"] = email_subject(payload)
        msg["Date"] = formatdate(date if date is not None else time.time(), localtime=False, usegmt=True)
        msg["Message-ID"] = message_id(delivery.notice_key, self.sender)
        msg[IDEMPOTENCY_HEADER] = delivery.notice_key
        msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        msg.set_content(email_body(payload), charset="utf-8")
        return msg

    def send(self, delivery: Delivery) -> None:
        if not self.host:
            raise DeliveryError("SMTP is not configured (METROLEX_SMTP_HOST)")
        msg = self.build_message(delivery)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=self.ssl_context or ssl.create_default_context())
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
            refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=[delivery.address])
        if refused:
            raise DeliveryError(f"recipient refused: {refused}")


# -- webhooks -----------------------------------------------------------------------------------
class WebhookChannel:
    """POSTs the notice's JSON, signed with HMAC-SHA256; anything but a 2xx answer is a failure."""

    name = "webhook"

    def __init__(self, secret: str | bytes, timeout: float = 10.0,
                 clock: Callable[[], float] = time.time) -> None:
        if not secret:
            raise ValueError("a webhook secret is required to sign deliveries")
        self.secret = secret
        self.timeout = timeout
        self.clock = clock

    def prepare(self, delivery: Delivery, timestamp: float | None = None) -> tuple[bytes, dict[str, str]]:
        """The exact body bytes and the headers that go with them."""
        body = delivery.payload_text.encode("utf-8")
        stamp = int(self.clock() if timestamp is None else timestamp)
        headers = {
            "Content-Type": "application/json",
            IDEMPOTENCY_HEADER: header_safe_key(delivery.notice_key),
            SIGNATURE_HEADER: sign(self.secret, body),
            TIMESTAMP_HEADER: str(stamp),
            "User-Agent": "metrolex-webhook/1",
        }
        return body, headers

    def send(self, delivery: Delivery) -> None:
        import httpx

        body, headers = self.prepare(delivery)
        try:
            response = httpx.post(delivery.address, content=body, headers=headers, timeout=self.timeout,
                                  follow_redirects=False)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            snippet = response.text[:200].strip()
            raise DeliveryError(f"HTTP {response.status_code}" + (f": {snippet}" if snippet else ""))


def channels_from_settings(settings, webhook_timeout: float = 10.0) -> dict[str, Channel]:
    """The channels the settings allow: e-mail only when an SMTP host is configured."""
    channels: dict[str, Channel] = {}
    if settings.smtp_host:
        channels["email"] = EmailChannel(settings)
    if settings.webhook_secret:
        channels["webhook"] = WebhookChannel(settings.webhook_secret, timeout=webhook_timeout)
    return channels


# -- the outbox worker --------------------------------------------------------------------------
def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    if not isinstance(exc, DeliveryError):
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text[:MAX_ERROR_CHARS] or type(exc).__name__


def _claim(app, channel_names: list[str], now: float, limit: int, lease_seconds: float) -> list[Delivery]:
    lease_until = now + lease_seconds
    with app.store.writing() as session:
        rows = session.execute(
            select(outbox.c.id, outbox.c.notice_key, outbox.c.channel, outbox.c.address, outbox.c.payload,
                   outbox.c.attempts)
            .where(outbox.c.status == "pending", outbox.c.next_attempt_at <= now,
                   outbox.c.channel.in_(channel_names))
            .order_by(outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)).all()
        if rows:
            session.execute(update(outbox).where(outbox.c.id.in_([r.id for r in rows]))
                            .values(next_attempt_at=lease_until))
    return [Delivery(r.id, r.notice_key, r.channel, r.address, r.payload, r.attempts or 0, lease_until)
            for r in rows]


def _load_notice(app, notice_key: str):
    from eventsourcing.application import AggregateNotFoundError
    try:
        return app.store.app.repository.get(Notice.create_id(notice_key))
    except AggregateNotFoundError:
        return None


def _record_success(app, d: Delivery) -> str | None:
    log = structlog.get_logger()
    with app.store.writing() as session:
        status = session.execute(select(outbox.c.status).where(outbox.c.id == d.id)).scalar()
        if status is None or status == "delivered":
            # Already recorded by another worker (or the row is gone): nothing more to say.
            log.info("delivery.already_recorded", outbox_id=d.id, channel=d.channel, notice_key=d.notice_key)
            return None
        notice = _load_notice(app, d.notice_key)
        if notice is not None:
            notice.record_delivery(d.channel, d.address, d.attempt)
            app.store.app.save(notice)
        else:
            log.warning("delivery.notice_missing", outbox_id=d.id, notice_key=d.notice_key)
        session.execute(update(outbox).where(outbox.c.id == d.id)
                        .values(status="delivered", attempts=d.attempt, last_error=None))
    log.info("delivery.delivered", outbox_id=d.id, channel=d.channel, notice_key=d.notice_key, attempt=d.attempt)
    return "delivered"


def _record_failure(app, d: Delivery, now: float, error: str, max_attempts: int) -> str | None:
    log = structlog.get_logger()
    attempts = d.attempt
    dead = attempts >= max_attempts
    next_at = now if dead else now + backoff_seconds(attempts)
    with app.store.writing() as session:
        result = session.execute(
            update(outbox)
            .where(outbox.c.id == d.id, outbox.c.status == "pending", outbox.c.attempts == d.attempts,
                   outbox.c.next_attempt_at == d.lease_until)
            .values(status="dead" if dead else "pending", attempts=attempts, next_attempt_at=next_at,
                    last_error=error))
        if result.rowcount != 1:
            # Our lease ran out and another worker took the row over: its outcome stands.
            log.warning("delivery.claim_lost", outbox_id=d.id, channel=d.channel, notice_key=d.notice_key)
            return None
        notice = _load_notice(app, d.notice_key)
        if notice is not None:
            notice.record_delivery_failure(d.channel, d.address, attempts, error)
            app.store.app.save(notice)
        else:
            log.warning("delivery.notice_missing", outbox_id=d.id, notice_key=d.notice_key)
    if dead:
        log.error("delivery.dead", outbox_id=d.id, channel=d.channel, notice_key=d.notice_key,
                  attempts=attempts, error=error)
        return "dead"
    log.warning("delivery.failed", outbox_id=d.id, channel=d.channel, notice_key=d.notice_key,
                attempt=attempts, retry_at=next_at, error=error)
    return "failed"


def epoch_seconds(now: float | dt.datetime | None) -> float:
    """`now` as epoch seconds: a number as it is, an aware datetime converted, None the wall clock."""
    if now is None:
        return time.time()
    if isinstance(now, dt.datetime):
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("deliver_pending: `now` must be an aware datetime or epoch seconds")
        return now.timestamp()
    return float(now)


def deliver_pending(app, channels: dict[str, Channel], now: float | dt.datetime | None = None, limit: int = 100,
                    max_attempts: int = 8, lease_seconds: float = DEFAULT_LEASE_SECONDS) -> dict[str, int]:
    """Send what is due in the outbox as of `now` (epoch seconds or an aware datetime; default:
    the wall clock).

    Returns how many rows were delivered, failed (a retry is scheduled) and went dead."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    now = epoch_seconds(now)
    counts = {"delivered": 0, "failed": 0, "dead": 0}
    if not channels or limit <= 0:
        return counts
    claimed = _claim(app, sorted(channels), now, limit, lease_seconds)
    for d in claimed:
        try:
            channels[d.channel].send(d)
        except Exception as exc:  # every failure of a channel is a failed attempt, recorded
            outcome = _record_failure(app, d, now, _describe(exc), max_attempts)
        else:
            outcome = _record_success(app, d)
        if outcome:
            counts[outcome] += 1
    if claimed:
        structlog.get_logger().info("delivery.batch", claimed=len(claimed), **counts)
    return counts


def requeue_dead(app, ids: list[int] | None = None, now: float = 0.0) -> int:
    """Give dead rows (all, or those in `ids`) a fresh round of attempts from `now`; returns how many."""
    with app.store.writing() as session:
        stmt = update(outbox).where(outbox.c.status == "dead")
        if ids is not None:
            if not ids:
                return 0
            stmt = stmt.where(outbox.c.id.in_(list(ids)))
        result = session.execute(stmt.values(status="pending", attempts=0, next_attempt_at=float(now)))
        count = result.rowcount or 0
    if count:
        structlog.get_logger().info("delivery.requeued", rows=count)
    return count


def outbox_rows(app, notice_key: str | None = None) -> list[dict[str, Any]]:
    """The outbox as plain dicts (for the CLI/API and tests), without the payload."""
    q = select(outbox.c.id, outbox.c.notice_key, outbox.c.channel, outbox.c.address, outbox.c.attempts,
               outbox.c.next_attempt_at, outbox.c.status, outbox.c.last_error).order_by(outbox.c.id)
    if notice_key is not None:
        q = q.where(outbox.c.notice_key == notice_key)
    with app.store.reading() as session:
        return [dict(r._mapping) for r in session.execute(q)]


__all__ = ["Channel", "Delivery", "DeliveryError", "EmailChannel", "WebhookChannel", "backoff_seconds",
           "channels_from_settings", "deliver_pending", "email_body", "epoch_seconds", "email_subject", "message_id",
           "outbox_rows", "requeue_dead", "sign", "verify_signature"]
