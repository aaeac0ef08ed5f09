"""`flask --app hotline ask` and `knowledge-eval`."""

from __future__ import annotations

import json

from flask import Flask


def test_ask_prints_the_article_as_json(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["ask", "身份证丢了怎么补办"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["article"] == "id-card-loss"
    assert answer["title"] and answer["answer"]
    assert 0.0 < answer["confidence"] <= 1.0
    assert answer["answer_in_call"] is True


def test_ask_in_korean_answers_in_korean(app: Flask) -> None:
    arguments = ["ask", "수도요금은 어떻게 내요", "--locale", "ko-KR"]
    result = app.test_cli_runner().invoke(args=arguments)
    answer = json.loads(result.output)
    assert answer["article"] == "water-bill"
    assert answer["locale"] == "ko-KR"
    assert "수도" in answer["title"]


def test_ask_gives_no_article_for_a_complaint(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["ask", "路灯不亮了"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output)
    assert answer["article"] is None
    assert answer["confidence"] is None


def test_knowledge_eval_prints_the_figures(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["knowledge-eval"])
    assert result.exit_code == 0, result.output
    assert "top-1" in result.output
    assert "complaints answered" in result.output
    assert "p50" in result.output
