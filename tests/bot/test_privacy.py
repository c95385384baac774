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
