"""One clinic dictionary: hot words, the local summary and the MCP analysis cut a text the same way."""

from __future__ import annotations

from anmei.ai import extractive
from anmei.stats.services import terms


def test_summaries_and_hot_words_know_the_same_clinic_words():
    # given words each copy used to know alone (the summaries' 埋线双眼皮, the statistics' 黄金微针)
    text = "我想了解埋线双眼皮和黄金微针的价格"
    # when statistics and the local summary cut it
    hot = terms.words_of(text)
    summary = set(extractive.keywords(text, top=10))
    # then both keep each term whole, and both drop the same stop words
    assert {"埋线双眼皮", "黄金微针"} <= hot
    assert {"埋线双眼皮", "黄金微针"} <= summary
    assert "了解" not in hot and "了解" not in summary
