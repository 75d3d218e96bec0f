"""Delivery without a network: webhook signatures, the retry schedule, and how a notice e-mail reads."""
from __future__ import annotations

import hashlib
import hmac
import json
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from adapters.delivery import (IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, Delivery, EmailChannel,
                               WebhookChannel, backoff_seconds, email_subject, message_id, sign,
                               verify_signature)
from adapters.settings import Settings

KEY = "center-major-event|v1|c-icv|2023-09-28|ev-me1|overdue|0"
ZH = "【逾期通知】产业计量测试中心遇重大事项应在5个工作日内书面告知\n对象:c-icv(2023-09-28)"
EN = "[Overdue] 产业计量测试中心遇重大事项应在5个工作日内书面告知\nSubject: c-icv (2023-09-28)"


def _payload(**over) -> dict:
    p = {"key": KEY, "rule": "center-major-event", "rule_version": 1, "subject": "c-icv", "kind": "overdue",
         "step": 0, "due": "2023-10-11", "recipient": "sh-zjy", "copy_to": [], "escalated_to": None,
         "message": {"zh": ZH, "en": EN}}
    return p | over


def _delivery(channel="email", address="x@example.test", key=KEY, **over) -> Delivery:
    payload = _payload(**over) | {"key": key}
    return Delivery(1, key, channel, address, json.dumps(payload, ensure_ascii=False))


# -- signatures ---------------------------------------------------------------------------------
def test_a_signature_is_the_hex_hmac_sha256_of_the_exact_body():
    body = json.dumps(_payload(), ensure_ascii=False).encode("utf-8")
    expected = hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert sign("s3cret", body) == "sha256=" + expected
    assert verify_signature("s3cret", body, "sha256=" + expected)
    assert verify_signature(b"s3cret", body, "sha256=" + expected.upper())  # hex case does not matter


@pytest.mark.parametrize("secret, body, header", [
    ("other", b'{"a":1}', sign("s3cret", b'{"a":1}')),            # wrong secret
    ("s3cret", b'{"a": 1}', sign("s3cret", b'{"a":1}')),          # one byte of whitespace changed
    ("s3cret", b'{"a":1}', sign("s3cret", b'{"a":1}')[7:]),       # no sha256= prefix
    ("s3cret", b'{"a":1}', "sha1=" + sign("s3cret", b'{"a":1}')[7:]),
    ("s3cret", b'{"a":1}', "sha256="),
    ("s3cret", b'{"a":1}', "sha256=zz-not-hex"),
    ("s3cret", b'{"a":1}', "sha256=签名"),
    ("s3cret", b'{"a":1}', None),
    ("s3cret", b'{"a":1}', ""),
], ids=["wrong-secret", "changed-body", "no-prefix", "sha1", "empty-digest", "not-hex", "non-ascii",
        "missing", "empty"])
def test_a_signature_that_does_not_match_is_refused(secret, body, header):
    assert verify_signature(secret, body, header) is False


def test_the_webhook_request_is_signed_over_the_bytes_it_sends():
    channel = WebhookChannel("s3cret", clock=lambda: 1_700_000_000.7)
    d = _delivery(channel="webhook", address="http://127.0.0.1:1/hook")
    body, headers = channel.prepare(d)
    assert body == d.payload_text.encode("utf-8")  # the stored JSON, byte for byte
    assert json.loads(body)["message"]["zh"] == ZH
    assert headers["Content-Type"] == "application/json"
    assert headers[IDEMPOTENCY_HEADER] == KEY
    assert headers[TIMESTAMP_HEADER] == "1700000000"
    assert verify_signature("s3cret", body, headers[SIGNATURE_HEADER])
    assert not verify_signature("s3cret", body + b" ", headers[SIGNATURE_HEADER])


def test_a_non_ascii_idempotency_key_is_percent_encoded_in_the_header_only():
    key = "center-major-event|v1|中心甲|2023-09-28|-|overdue|0"
    body, headers = WebhookChannel("s").prepare(_delivery(channel="webhook", key=key))
    assert headers[IDEMPOTENCY_HEADER].isascii() and "%E4%B8%AD" in headers[IDEMPOTENCY_HEADER]
    assert json.loads(body)["key"] == key


def test_a_webhook_channel_needs_a_secret():
    with pytest.raises(ValueError):
        WebhookChannel("")


# -- the clock --------------------------------------------------------------------------------
def test_now_may_be_epoch_seconds_or_an_aware_datetime_but_not_a_naive_one():
    import datetime as dt
    from adapters.delivery import epoch_seconds
    shanghai = dt.timezone(dt.timedelta(hours=8))
    assert epoch_seconds(1_700_000_000) == 1_700_000_000.0
    assert epoch_seconds(dt.datetime(2023, 11, 15, 6, 13, 20, tzinfo=shanghai)) == 1_700_000_000.0
    with pytest.raises(ValueError, match="aware"):
        epoch_seconds(dt.datetime(2023, 11, 15, 6, 13, 20))


# -- backoff ------------------------------------------------------------------------------------
def test_the_retry_delay_doubles_from_a_minute_and_stops_at_six_hours():
    assert [backoff_seconds(n) for n in range(1, 12)] == [
        60, 120, 240, 480, 960, 1920, 3840, 7680, 15360, 21600, 21600]
    assert backoff_seconds(1000) == 6 * 3600


def test_there_is_no_delay_before_a_first_failure():
    with pytest.raises(ValueError):
        backoff_seconds(0)


# -- e-mail -------------------------------------------------------------------------------------
def _settings() -> Settings:
    return Settings(smtp_host="mail.invalid", smtp_sender="metrolex@sh-metrology.example")


def test_the_subject_names_the_kind_rule_and_subject_in_chinese():
    assert email_subject(_payload()) == "【metrolex】逾期通知 center-major-event c-icv"
    assert email_subject(_payload(kind="reminder", step=2)) == "【metrolex】到期提醒 center-major-event c-icv"
    assert email_subject(_payload(escalated_to="sh-jlc")) == "【metrolex】逾期上报 center-major-event c-icv"


def test_the_mail_survives_the_wire_with_chinese_subject_body_and_idempotency_headers():
    channel = EmailChannel(_settings())
    msg = channel.build_message(_delivery(), date=1_700_000_000)
    wire = msg.as_bytes()
    assert all(line.isascii() for line in wire.split(b"\r\n\r\n", 1)[0].split(b"\n")), \
        "headers must be encoded for 7-bit transport"
    # identifiers are never folded over two lines, so every receiver reads them verbatim
    assert f"\r\n{IDEMPOTENCY_HEADER}: {KEY}\r\n".encode() in wire
    assert f"\r\nMessage-ID: {message_id(KEY, 'metrolex@sh-metrology.example')}\r\n".encode() in wire
    parsed = message_from_bytes(wire, policy=default_policy)
    assert parsed["Subject"] == "【metrolex】逾期通知 center-major-event c-icv"
    assert parsed["From"] == "metrolex@sh-metrology.example"
    assert parsed["To"] == "x@example.test"
    assert parsed[IDEMPOTENCY_HEADER] == KEY
    assert parsed["Message-ID"] == message_id(KEY, "metrolex@sh-metrology.example")
    assert parsed["Message-ID"].endswith("@sh-metrology.example>")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"].datetime.timestamp() == 1_700_000_000
    assert parsed.get_content_type() == "text/plain" and parsed.get_content_charset() == "utf-8"
    body = parsed.get_content().replace("\r\n", "\n")  # text travels with CRLF line ends
    assert ZH in body and EN in body
    assert body.index(ZH) < body.index(EN), "Chinese first, then English"
    assert KEY in body


def test_the_message_id_is_the_same_at_every_attempt_and_differs_between_notices():
    channel = EmailChannel(_settings())
    first = channel.build_message(_delivery())["Message-ID"]
    again = channel.build_message(_delivery(address="y@example.test"))["Message-ID"]
    other = channel.build_message(_delivery(key=KEY.replace("|0", "|1")))["Message-ID"]
    assert first == again
    assert first != other
    assert message_id(KEY, "no-domain").endswith("@metrolex.invalid>")


def test_a_mail_without_an_english_text_has_the_chinese_one_alone():
    msg = EmailChannel(_settings()).build_message(_delivery(message={"zh": ZH}))
    body = message_from_bytes(msg.as_bytes(), policy=default_policy).get_content().replace("\r\n", "\n")
    assert body.startswith(ZH) and "——" not in body


def test_sending_without_an_smtp_host_fails_without_touching_the_network():
    from adapters.delivery import DeliveryError
    with pytest.raises(DeliveryError, match="SMTP is not configured"):
        EmailChannel(Settings()).send(_delivery())
