"""Phone and ID-card numbers never reach log files or (when configured) agent exports."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from bot.privacy import mask_logs, mask_pii


@pytest.mark.parametrize(("text", "expected"), [
    ("我的手机13812345678，麻烦回电", "我的手机138****5678，麻烦回电"),
    ("call +86 138-1234-5678 please", "call +86 138****5678 please"),
    ("8613812345678", "86138****5678"),
    ("身份证号11010519491231002X", "身份证号110105***********X"),
    ("id 110105200001011234.", "id 110105***********4."),
    ("mail li.lei@example.com", "mail l***@example.com"),
])
def test_personal_numbers_are_masked(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize("text", [
    "订单号202611230001234，金额100元",  # 15-digit order number
    "运单 SF1234567890123",  # letters glued to digits: a parcel number, not a phone
    "1381234567890123456789",  # a long digit run is not a phone number
    "价格12345678元",
])
def test_other_numbers_are_left_alone(text: str) -> None:
    assert mask_pii(text) == text


@pytest.fixture
def masked_logging() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    mask_logs()
    mask_logs()  # idempotent: installing twice masks once
    yield
    logging.setLogRecordFactory(factory)


def test_log_records_and_tracebacks_are_masked(masked_logging: None, caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("kefu.test")
    with caplog.at_level(logging.INFO):
        log.info("customer %s wrote: %s", "wechat:o1", "我的电话是13812345678")
        try:
            raise ValueError("bad id 11010519491231002X")
        except ValueError:
            log.exception("failed")
    text = caplog.text
    assert "138****5678" in text and "13812345678" not in text
    assert "11010519491231002X" not in text and "110105***********X" in text


def test_credentials_in_urls_are_redacted(masked_logging: None, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO):
        logging.getLogger("httpx").info("HTTP Request: POST https://api.weixin.qq.com/cgi-bin/message/custom/send"
                                        "?access_token=ACCESS123xyz&x=1")
        logging.getLogger("kefu.test").info("GET /cgi-bin/gettoken?corpid=ww1&corpsecret=CORPSECRET99")
    assert "ACCESS123xyz" not in caplog.text and "CORPSECRET99" not in caplog.text
    assert "access_token=***&x=1" in caplog.text


@pytest.mark.parametrize(("text", "expected"), [
    ("身份证11010519491231002Xabc", "身份证110105***********Xabc"),
    ("id=110105200001011234abc", "id=110105***********4abc"),
])
def test_id_numbers_followed_by_letters_are_masked(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


def access_line(path: str) -> str:
    """What uvicorn writes for a request to ``path``: its own formatter reads ``record.args``."""
    from uvicorn.logging import AccessFormatter

    record = logging.getLogger("uvicorn.access").makeRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:50000", "GET", path, "1.1", 200), None)
    return AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)


def test_a_phone_number_in_the_url_cannot_hide_a_request_from_the_access_log(masked_logging: None) -> None:
    line = access_line("/api/chat/abcdefgh/messages?x=13800000000&secret=S3CRET")
    assert line == '127.0.0.1:50000 - "GET /api/chat/abcdefgh/messages?x=138****0000&secret=*** HTTP/1.1" 200 OK'


def test_wechat_plain_mode_signature_parameters_are_redacted(masked_logging: None) -> None:
    line = access_line("/webhooks/wechat?signature=0f9a8b&timestamp=1790000000&nonce=1320562132&openid=o1")
    assert "0f9a8b" not in line and "1320562132" not in line
    assert "signature=***&timestamp=***&nonce=***&openid=o1" in line


def test_credentials_are_redacted_even_when_personal_data_is_not_masked(caplog: pytest.LogCaptureFixture) -> None:
    factory = logging.getLogRecordFactory()
    mask_logs(pii=False)
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("httpx").warning("POST https://api.weixin.qq.com/x?access_token=TOK123 failed for %s",
                                               "13812345678")
    finally:
        logging.setLogRecordFactory(factory)
    assert "TOK123" not in caplog.text and "access_token=***" in caplog.text
    assert "13812345678" in caplog.text  # mask_logs: false keeps personal data, as configured
