"""The languages the hotline speaks, as it writes them (BCP 47 tags), Mandarin first."""

LOCALES = ("zh-CN", "en-US", "ko-KR")
DEFAULT_LOCALE = "zh-CN"
