"""Trivial turns — "好的", "yes", "thanks" — cost Alipay's per-request minimum for nothing: the cheap side answers.

A turn is trivial when, with punctuation, emoji and spaces removed, it is made only of acknowledgement,
greeting or thanks words (``ok thanks``, ``好的，谢谢！``). Anything else — even a short question — is not.
"""

from __future__ import annotations

import re

# Longest first, so the scanner takes "thank you" before "thank".
_WORDS = sorted({
    "ok", "okay", "okey", "k", "kk", "yes", "yeah", "yep", "yup", "y", "no", "nope", "nah", "sure", "fine",
    "thanks", "thank you", "thankyou", "thx", "ty", "tks", "cheers", "great", "cool", "nice", "good", "perfect",
    "got it", "gotcha", "understood", "noted", "alright", "all right", "right", "i see", "sounds good",
    "much appreciated", "appreciated", "hi", "hello", "hey", "bye", "goodbye", "see you", "good morning",
    "good night", "lol", "haha", "wow", "please", "so much", "very much", "a lot", "and", "that's", "thats",
    "it", "all", "is", "you", "too",
    "好", "好的", "好吧", "好哒", "好滴", "嗯", "嗯嗯", "恩", "哦", "噢", "哦哦", "行", "行吧", "可以", "是", "是的",
    "对", "对的", "没错", "不", "不用", "不要", "谢谢", "谢啦", "谢了", "多谢", "感谢", "非常感谢", "收到", "明白",
    "明白了", "了解", "知道了", "懂了", "没问题", "ok的", "你好", "您好", "嗨", "哈喽", "再见", "拜拜", "晚安",
    "早上好", "哈哈", "辛苦了", "太好了", "好极了", "棒", "赞", "了", "啊", "呀", "呢", "吧", "啦", "的", "你",
    "您", "谢", "謝謝", "謝啦", "多謝", "感謝", "非常感謝", "好嘅", "明白晒", "冇問題", "沒問題", "再見", "對",
}, key=len, reverse=True)
# Latin words only as whole words ("k" is no acknowledgement inside "key"); CJK words anywhere.
_SCAN = re.compile("|".join(rf"(?<![a-z']){re.escape(word)}(?![a-z'])" if word.isascii() else re.escape(word)
                            for word in _WORDS))
_NOISE = re.compile(r"[\s\W_]+", re.UNICODE)
MAX_TRIVIAL_CHARS = 40


def is_trivial(text: str | None) -> bool:
    """True for an empty turn or one made only of acknowledgement words (see the module docstring)."""
    plain = (text or "").strip().lower()
    if len(plain) > MAX_TRIVIAL_CHARS:
        return False
    return not _NOISE.sub("", _SCAN.sub(" ", _NOISE.sub(" ", plain)))
