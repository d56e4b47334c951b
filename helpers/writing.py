"""Writing systems the course meets in images: the one definition of which characters are CJK.

Chinese, Japanese and Korean are written without spaces between words, so the character error rate removes
spaces between them, the offline backend compares them character by character, and a question containing
Chinese characters is answered in Chinese. Each use takes the blocks it needs from here, as regular-expression
character-class bodies (Unicode blocks as named in the Unicode Standard's block list).

>>> import re
>>> bool(re.fullmatch(f"[{IDEOGRAPHS}]+", "图像")), bool(re.fullmatch(f"[{KANA}]+", "テキスト"))
(True, True)
"""

from __future__ import annotations

__all__ = ["CJK_NO_SPACE", "HANGUL", "IDEOGRAPHS", "IDEOGRAPHS_AND_KANA", "KANA"]

#: CJK Unified Ideographs, Extension A, and Compatibility Ideographs.
IDEOGRAPHS = r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: Hiragana and Katakana.
KANA = r"\u3040-\u30ff"
#: Hangul syllables.
HANGUL = r"\uac00-\ud7af"
#: Ideographs and kana: the characters compared one by one.
IDEOGRAPHS_AND_KANA = KANA + IDEOGRAPHS
#: Every character written without spaces between words: radicals, CJK symbols and punctuation, kana, Bopomofo,
#: ideographs, Hangul, and the half- and full-width forms.
CJK_NO_SPACE = (r"\u2e80-\u2fdf\u3000-\u303f" + KANA + r"\u3100-\u312f\u31a0-\u31ff" + IDEOGRAPHS + HANGUL
                + r"\uff00-\uffef")
