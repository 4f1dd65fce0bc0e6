"""Masking of personal data before an LLM call: what is found, what is left, how it comes back."""

from __future__ import annotations

from anmei.ai.masking import Masker, id_card_valid, luhn_valid

ID_NUMBER = "11010519491231002X"  # a valid check character (X)
CARD = "6222021234567890128"  # 19 digits, passes Luhn


def test_checksums():
    assert id_card_valid(ID_NUMBER) and id_card_valid(ID_NUMBER.lower())
    assert not id_card_valid("110105194912310021")  # wrong check character
    assert luhn_valid(CARD) and not luhn_valid("6222021234567890127")


def test_phone_variants_share_one_placeholder_and_come_back_as_written():
    masker = Masker()
    masked = masker.mask("电话13800138000，或 +86 138-0013-8000，或 138 0013 8000，另一个 008615912345678")
    assert "138" not in masked and "159" not in masked
    assert masked == "电话[PHONE_1]，或 [PHONE_1]，或 [PHONE_1]，另一个 [PHONE_2]"
    assert masker.unmask("请拨打[PHONE_1]或[PHONE_2]") == "请拨打13800138000或008615912345678"


def test_id_email_card_and_what_is_left_alone():
    masker = Masker()
    text = f"身份证{ID_NUMBER}，邮箱 Amy.Li@Example.com，卡号 6222 0212 3456 7890 128，订单号 1234567890123"
    masked = masker.mask(text)
    assert masked == "身份证[ID_1]，邮箱 [EMAIL_1]，卡号 [CARD_1]，订单号 1234567890123"  # no Luhn: not a card
    assert masker.unmask(masked) == text
    assert masker.count == 3
    assert masker.mask("价格 12800 元，维持 6-12 个月，110105194912310021") == (
        "价格 12800 元，维持 6-12 个月，110105194912310021"  # a bad check character is not an ID number
    )


def test_numbering_is_by_first_appearance_across_messages():
    masker = Masker()
    messages = masker.mask_messages(
        [
            {"role": "system", "content": "你是助手"},
            {"role": "user", "content": "我的手机 13900001111"},
            {"role": "assistant", "content": None},
            {"role": "user", "content": "邮箱 a@b.cn，手机还是 13900001111，备用 13700002222"},
        ]
    )
    assert [m["content"] for m in messages] == [
        "你是助手",
        "我的手机 [PHONE_1]",
        None,
        "邮箱 [EMAIL_1]，手机还是 [PHONE_1]，备用 [PHONE_2]",
    ]
    assert masker.mask_messages(None) is None


def test_unknown_placeholders_stay_and_streamed_fragments_are_unmasked_whole():
    masker = Masker()
    masker.mask("13800138000")
    assert masker.unmask("[PHONE_9] 与 [PHONE_1]") == "[PHONE_9] 与 13800138000"
    seen: list[str] = []
    delta = masker.stream(seen.append)
    for fragment in ("请拨打[PH", "ONE_", "1]联系", "我们[", "价格]"):
        delta(fragment)
    assert "".join(seen) == "请拨打13800138000联系我们[价格]"
    assert masker.stream(None) is None
