"""The clinic's words: one jieba user dictionary and one stop-word list for every Chinese text job.

Out of the box jieba cuts 玻尿酸 into 尿酸 and knows no clinic terms. Statistics (hot words and
questions), the local extractive summary and suggestions, and the MCP `analyze_customer` tool all
cut text with these two files, so a word is the same word on every page.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
USER_DICT = HERE / "clinic.dict"  # jieba user-dictionary format: word [frequency [part of speech]]
STOP_WORDS = HERE / "stopwords.txt"  # one word per line
