"""The oracle: Alipay's official Python SDK, with its own request and model classes, drives the
emulator's trades and verifies every answer (``execute`` raises on a bad signature). Field names and
documented semantics are checked through the SDK's own response classes."""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from alipay.aop.api.domain.AlipayDataDataserviceBillDownloadurlQueryModel import (
    AlipayDataDataserviceBillDownloadurlQueryModel,
)
from alipay.aop.api.domain.AlipayTradeCancelModel import AlipayTradeCancelModel
from alipay.aop.api.domain.AlipayTradeCloseModel import AlipayTradeCloseModel
from alipay.aop.api.domain.AlipayTradeFastpayRefundQueryModel import AlipayTradeFastpayRefundQueryModel
from alipay.aop.api.domain.AlipayTradePrecreateModel import AlipayTradePrecreateModel
from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel
from alipay.aop.api.domain.AlipayTradeRefundModel import AlipayTradeRefundModel
from alipay.aop.api.request.AlipayDataDataserviceBillDownloadurlQueryRequest import (
    AlipayDataDataserviceBillDownloadurlQueryRequest,
)
from alipay.aop.api.request.AlipayTradeCancelRequest import AlipayTradeCancelRequest
from alipay.aop.api.request.AlipayTradeCloseRequest import AlipayTradeCloseRequest
from alipay.aop.api.request.AlipayTradeFastpayRefundQueryRequest import AlipayTradeFastpayRefundQueryRequest
from alipay.aop.api.request.AlipayTradePrecreateRequest import AlipayTradePrecreateRequest
from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest
from alipay.aop.api.request.AlipayTradeRefundRequest import AlipayTradeRefundRequest
from alipay.aop.api.response.AlipayTradeCancelResponse import AlipayTradeCancelResponse
from alipay.aop.api.response.AlipayTradeFastpayRefundQueryResponse import AlipayTradeFastpayRefundQueryResponse
from alipay.aop.api.response.AlipayTradePrecreateResponse import AlipayTradePrecreateResponse
from alipay.aop.api.response.AlipayTradeQueryResponse import AlipayTradeQueryResponse
from alipay.aop.api.response.AlipayTradeRefundResponse import AlipayTradeRefundResponse

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.wire.signing import load_private_key, verify_params


def _refund(sdk, out_trade_no: str, amount, request_no: str | None = None) -> AlipayTradeRefundResponse:
    model = AlipayTradeRefundModel()
    model.out_trade_no = out_trade_no
    model.refund_amount = amount
    if request_no is not None:
        model.out_request_no = request_no
    request = AlipayTradeRefundRequest(biz_model=model)
    response = AlipayTradeRefundResponse()
    response.parse_response_content(sdk.execute(request))
    return response


def _query(sdk, out_trade_no: str) -> AlipayTradeQueryResponse:
    model = AlipayTradeQueryModel()
    model.out_trade_no = out_trade_no
    response = AlipayTradeQueryResponse()
    response.parse_response_content(sdk.execute(AlipayTradeQueryRequest(biz_model=model)))
    return response


def _refund_query(sdk, out_trade_no: str, request_no: str, options=None) -> AlipayTradeFastpayRefundQueryResponse:
    model = AlipayTradeFastpayRefundQueryModel()
    model.out_trade_no = out_trade_no
    model.out_request_no = request_no
    if options:
        model.query_options = options
    response = AlipayTradeFastpayRefundQueryResponse()
    response.parse_response_content(sdk.execute(AlipayTradeFastpayRefundQueryRequest(biz_model=model)))
    return response


def test_partial_refunds_accumulate_and_a_full_refund_closes_the_trade(sdk, trade, alipay_emulator) -> None:
    t = trade("100.00")
    first = _refund(sdk, t["out_trade_no"], "30.00", "r1")
    assert (first.code, first.fund_change, first.refund_fee, first.trade_no) == ("10000", "Y", "30.00", t["trade_no"])
    second = _refund(sdk, t["out_trade_no"], 70, "r2")  # a number, as the official MCP server sends it
    assert (second.fund_change, second.refund_fee) == ("Y", "100.00")
    assert _query(sdk, t["out_trade_no"]).trade_status == "TRADE_CLOSED"
    assert alipay_emulator.stats()["trades"]["refunds_executed"] == 2


def test_same_number_same_amount_replays_the_first_result_without_moving_money(sdk, trade, alipay_emulator) -> None:
    t = trade("50.00")
    assert _refund(sdk, t["out_trade_no"], "10.00", "same").fund_change == "Y"
    again = _refund(sdk, t["out_trade_no"], "10.00", "same")
    assert (again.code, again.fund_change, again.refund_fee) == ("10000", "N", "10.00")
    stats = alipay_emulator.stats()["trades"]
    assert (stats["refunds_executed"], stats["refund_repeats"]) == (1, 1)


def test_same_number_other_amount_is_a_discordant_repeat(sdk, trade) -> None:
    t = trade("50.00")
    _refund(sdk, t["out_trade_no"], "10.00", "n1")
    other = _refund(sdk, t["out_trade_no"], "11.00", "n1")
    assert (other.code, other.sub_code, other.refund_fee) == ("40004", "ACQ.DISCORDANT_REPEAT_REQUEST", "0.00")
    assert not other.is_success()


def test_partial_refund_without_a_number_is_refused(sdk, trade) -> None:
    t = trade("50.00")
    refused = _refund(sdk, t["out_trade_no"], "10.00")
    assert refused.sub_code == "ACQ.REFUND_AMT_NOT_EQUAL_TOTAL"
    assert (refused.out_trade_no, refused.refund_fee, refused.send_back_fee) == (t["out_trade_no"], "0.00", "0.00")
    whole = _refund(sdk, t["out_trade_no"], "50.00")  # the whole amount needs no number
    assert (whole.fund_change, whole.refund_fee) == ("Y", "50.00")


def test_refund_failures_by_state_and_balance(sdk, trade) -> None:
    finished = trade("5.00", trade_status="TRADE_FINISHED")
    unpaid = trade("5.00", trade_status="WAIT_BUYER_PAY")
    paid = trade("5.00")
    broke = trade("5.00", refund_error="ACQ.SELLER_BALANCE_NOT_ENOUGH")
    assert _refund(sdk, finished["out_trade_no"], "1.00", "x").sub_code == "ACQ.TRADE_HAS_FINISHED"
    assert _refund(sdk, unpaid["out_trade_no"], "1.00", "x").sub_code == "ACQ.TRADE_STATUS_ERROR"
    assert _refund(sdk, paid["out_trade_no"], "6.00", "x").sub_code == "ACQ.REASON_TRADE_REFUND_FEE_ERR"
    assert _refund(sdk, "no-such-trade", "1.00", "x").sub_code == "ACQ.TRADE_NOT_EXIST"
    assert _refund(sdk, broke["out_trade_no"], "1.00", "x").sub_code == "ACQ.SELLER_BALANCE_NOT_ENOUGH"


def test_refund_query_has_no_status_until_a_refund_succeeded(sdk, trade) -> None:
    t = trade("20.00")
    before = _refund_query(sdk, t["out_trade_no"], "q1")
    assert (before.code, before.refund_status, before.out_request_no) == ("10000", None, "q1")
    _refund(sdk, t["out_trade_no"], "5.00", "q1")
    after = _refund_query(sdk, t["out_trade_no"], "q1", ["gmt_refund_pay"])
    assert (after.refund_status, after.refund_amount, after.total_amount) == ("REFUND_SUCCESS", "5.00", "20.00")
    assert after.gmt_refund_pay
    assert _refund_query(sdk, t["out_trade_no"], "q1").gmt_refund_pay is None  # only via query_options


def test_query_close_and_cancel_follow_the_state_machine(sdk, trade) -> None:
    unpaid, paid = trade("9.00", trade_status="WAIT_BUYER_PAY"), trade("9.00")
    queried = _query(sdk, paid["out_trade_no"])
    assert (queried.trade_status, queried.total_amount, queried.trade_no) == ("TRADE_SUCCESS", "9.00", paid["trade_no"])
    close = AlipayTradeCloseModel()
    close.out_trade_no = paid["out_trade_no"]
    refused = AlipayTradeRefundResponse()
    refused.parse_response_content(sdk.execute(AlipayTradeCloseRequest(biz_model=close)))
    assert refused.sub_code == "ACQ.TRADE_STATUS_ERROR"  # close only while unpaid
    close.out_trade_no = unpaid["out_trade_no"]
    assert '"code":"10000"' in sdk.execute(AlipayTradeCloseRequest(biz_model=close))
    assert _query(sdk, unpaid["out_trade_no"]).trade_status == "TRADE_CLOSED"
    cancel = AlipayTradeCancelModel()
    cancel.out_trade_no = paid["out_trade_no"]
    cancelled = AlipayTradeCancelResponse()
    cancelled.parse_response_content(sdk.execute(AlipayTradeCancelRequest(biz_model=cancel)))
    assert (cancelled.action, cancelled.retry_flag) == ("refund", "N")
    assert _query(sdk, paid["out_trade_no"]).trade_status == "TRADE_CLOSED"


def test_precreate_gives_a_qr_code_and_the_trade_appears_once_paid(sdk, alipay_emulator: EmulatorProcess) -> None:
    model = AlipayTradePrecreateModel()
    model.out_trade_no, model.total_amount, model.subject = "qr-1", "12.00", "coffee"
    response = AlipayTradePrecreateResponse()
    response.parse_response_content(sdk.execute(AlipayTradePrecreateRequest(biz_model=model)))
    assert response.out_trade_no == "qr-1" and response.qr_code.startswith("https://qr.alipay.com/")
    assert _query(sdk, "qr-1").sub_code == "ACQ.TRADE_NOT_EXIST"  # not scanned yet
    alipay_emulator.pay_trade("qr-1")
    assert _query(sdk, "qr-1").trade_status == "TRADE_SUCCESS"
    model.total_amount = "13.00"
    again = AlipayTradePrecreateResponse()
    again.parse_response_content(sdk.execute(AlipayTradePrecreateRequest(biz_model=model)))
    assert again.sub_code == "ACQ.TRADE_HAS_SUCCESS"


def test_bill_url_is_t_plus_one(sdk) -> None:
    model = AlipayDataDataserviceBillDownloadurlQueryModel()
    model.bill_type, model.bill_date = "trade", (date.today() - timedelta(days=2)).isoformat()
    ok = sdk.execute(AlipayDataDataserviceBillDownloadurlQueryRequest(biz_model=model))
    assert '"bill_download_url":"https://' in ok
    model.bill_date = (date.today() + timedelta(days=1)).isoformat()
    assert "isp.bill_not_exist" in sdk.execute(AlipayDataDataserviceBillDownloadurlQueryRequest(biz_model=model))


def test_sdk_page_pay_url_is_accepted_by_our_verifier(sdk, alipay_emulator: EmulatorProcess) -> None:
    """The SDK's page_execute URL carries a signature our verifier accepts; a changed amount does not."""
    from alipay.aop.api.domain.AlipayTradePagePayModel import AlipayTradePagePayModel
    from alipay.aop.api.request.AlipayTradePagePayRequest import AlipayTradePagePayRequest

    model = AlipayTradePagePayModel()
    model.out_trade_no, model.total_amount, model.subject = "page-1", "1.00", "book"
    model.product_code = "FAST_INSTANT_TRADE_PAY"
    url = sdk.page_execute(AlipayTradePagePayRequest(biz_model=model), http_method="GET")
    params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert params["method"] == "alipay.trade.page.pay"
    app_public_key = load_private_key(alipay_emulator.app_private_key).public_key()
    assert verify_params(params, app_public_key)
    params["biz_content"] = params["biz_content"].replace("1.00", "9.00")
    assert not verify_params(params, app_public_key)


def test_demo_trades_are_seeded_and_a_reset_returns_to_them(alipay_emulator: EmulatorProcess, sdk) -> None:
    statuses = {t["out_trade_no"]: t["trade_status"] for t in alipay_emulator.trades()}
    assert statuses["demo-paid-1"] == "TRADE_SUCCESS" and statuses["demo-unpaid-1"] == "WAIT_BUYER_PAY"
    assert _refund(sdk, "demo-paid-1", "88.00").fund_change == "Y"
    alipay_emulator.reset()
    assert _query(sdk, "demo-paid-1").trade_status == "TRADE_SUCCESS"


def test_admin_trade_creation_names_the_bad_field(alipay_emulator: EmulatorProcess) -> None:
    import json
    import urllib.error
    import urllib.request

    for body, field in [({"out_trade_no": "x", "total_amount": "1.001"}, "total_amount"),
                        ({"total_amount": "1"}, "out_trade_no"),
                        ({"out_trade_no": "x", "total_amount": "1", "trade_status": "PAID"}, "trade_status")]:
        request = urllib.request.Request(f"{alipay_emulator.base_url}/_admin/trades", data=json.dumps(body).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=10)
        assert refused.value.code == 400 and json.loads(refused.value.read())["error"].startswith(field)
