"""Text normalisation for transcripts: width, case, CJK spacing and spoken fillers."""

from __future__ import annotations

import functools
import re
import unicodedata

# Vosk's Mandarin model emits words separated by spaces ("路灯 不 亮"); written Chinese has none.
_HAN = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_SPACE_BETWEEN_HAN = re.compile(rf"(?<=[{_HAN}])\s+(?=[{_HAN}])")

# Chinese fillers that carry no meaning wherever they stand.
_ZH_FILLERS_ANYWHERE = re.compile(
    rf"嗯+|呃+|(?<![{_HAN}])额+(?=[，,。 ]|$)|就是说|然后呢|怎么说呢|你懂吧|你知道吧"
)
# "那个" is also the demonstrative "that": drop it only where it is a pause (clause start, doubled).
_ZH_NAGE_PAUSE = re.compile(r"(?:(?<=^)|(?<=[，,。！!？?\s]))(?:那个)+|(?:那个){2,}")
# "啊" as a sentence-final or pause particle; kept inside words such as 啊呀 is not worth it.
_ZH_A = re.compile(r"啊+")
_ZH_ZHEGE_DOUBLED = re.compile(r"(这个){2,}")

# English fillers. "like" and "you know" are ordinary words too, so only their filler uses go.
_EN_FILLERS = re.compile(r"\b(?:u+m+|u+h+|uhm+|e+rm+|er|hmm+|mm+)\b[,.]?", re.IGNORECASE)
_EN_LIKE = re.compile(r"(?:(?<=,)|(?<=^))\s*like\s*,|\blike\s*,\s*(?=\S)|\blike\s+(?=like\b)")
_EN_YOU_KNOW = re.compile(r"(?<!\bdo )(?<!\bdid )(?<!\bif )\byou know\b\s*(?:,|(?=[.!?]|$))")

# Korean hesitation syllables, removed only as whole tokens (음, 어, 그 are parts of many words).
_KO_FILLERS = re.compile(r"(?:(?<=^)|(?<=\s))(?:음+|으+음|어+|에+|아+|저기요?)(?:[.,…]+|(?=\s|$))")
# "그" is also the determiner "that": drop it only before a pause or another hesitation.
_KO_GEU = re.compile(r"(?:(?<=^)|(?<=\s))그(?:[.,…]+|\s+(?=그\s|음|어\s))")

_ORPHAN_PUNCT = re.compile(r"(^|[\s,，])[,，]+")
_SPACES = re.compile(r"\s+")


@functools.lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """Normalise a transcript for matching and classification; conservative by design."""
    # NFKC folds full-width Latin, digits and punctuation to half-width and keeps Han and Hangul.
    out = unicodedata.normalize("NFKC", text).lower()
    out = _SPACES.sub(" ", out).strip()
    out = _ZH_FILLERS_ANYWHERE.sub("", out)
    out = _ZH_NAGE_PAUSE.sub("", out)
    out = _ZH_A.sub("", out)
    out = _ZH_ZHEGE_DOUBLED.sub("这个", out)
    out = _EN_YOU_KNOW.sub("", out)
    out = _EN_LIKE.sub("", out)
    out = _EN_FILLERS.sub("", out)
    out = _KO_GEU.sub("", out)
    out = _KO_FILLERS.sub("", out)
    out = _SPACES.sub(" ", out).strip()
    out = _SPACE_BETWEEN_HAN.sub("", out)
    out = _ORPHAN_PUNCT.sub(r"\1", out)
    return _SPACES.sub(" ", out).strip(" ,，")
