"""Follow-up rewriting (rules and LLM with fallback) and the SQLite session store."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from fakes_llm import ScriptedChatModel

from tongcheng_qa.conversation import (
    NO_ANSWER,
    LLMRewriter,
    QuestionRewriter,
    RuleBasedRewriter,
    SessionNotFoundError,
    SessionStore,
    SQLiteSessionStore,
    Turn,
    answer_content,
)
from tongcheng_qa.errors import TongchengQAError
from tongcheng_qa.glossary import Glossary, GlossaryEntry, load_glossary
from tongcheng_qa.lang import detect_language

# Made-up entities, so the rules are exercised on names they were not written for.
GLOSSARY = Glossary([
    GlossaryEntry("星河产业园", "Xinghe Industrial Park", "park", ("星河园", "Xinghe park")),
    GlossaryEntry("青山区", "Qingshan District", "district", ("青山", "Qingshan")),
    GlossaryEntry("白水市", "Baishui", "city", ("白水", "Baishui City")),
    GlossaryEntry("王明", "Wang Ming", "person", ()),
    GlossaryEntry("李华", "Li Hua", "person", ()),
    GlossaryEntry("华西晨报", "Huaxi Morning Post", "media", ("Huaxi Morning News",)),
    GlossaryEntry("星河合作协议", "Xinghe Cooperation Agreement", "agreement", ()),
    GlossaryEntry("产业链", "industrial chain", "term", ("industrial chains",)),
])
RULES = RuleBasedRewriter(GLOSSARY)


def user(text: str) -> Turn:
    return Turn("user", text)


def assistant(text: str) -> Turn:
    return Turn("assistant", text)


# ---------------------------------------------------------------------------- rules, Chinese


@pytest.mark.parametrize("question", ["白水市的股比是多少?", "What is the shareholding ratio of Baishui?"])
def test_a_question_that_stands_alone_is_returned_unchanged(question: str) -> None:
    # The QuestionRewriter contract: a question that names its own subject is not rewritten,
    # even when the history is about something else.
    rewriter: QuestionRewriter = RULES
    history = [user("星河产业园入驻了几家企业?"), assistant("据华西晨报(2023-05-02)报道:入驻企业4家[1]。")]
    assert rewriter.rewrite(question, history) == question


def test_zh_pronoun_is_replaced_by_the_entity_of_the_previous_question() -> None:
    history = [user("星河产业园是由谁合作共建的?"), assistant("由两地合作共建。")]
    assert RULES.rewrite("那它的股比呢?", history) == "星河产业园的股比呢?"
    assert RULES.rewrite("其股比是多少?", history) == "星河产业园的股比是多少?"


def test_zh_rewriting_with_the_project_glossary_example() -> None:
    glossary = load_glossary([Path(__file__).resolve().parents[1] / "corpus" / "glossary.tsv"])
    out = RuleBasedRewriter(glossary).rewrite("那它的股比呢?", [user("金什合作产业园是由哪两地合作共建的?")])
    assert out == "金什合作产业园的股比呢?"


def test_zh_personal_pronoun_takes_the_person_named_in_the_answer() -> None:
    history = [user("记者在星河产业园见到的招商经理是谁?"), assistant("招商经理王明。")]
    assert RULES.rewrite("他当时在忙什么?", history) == "王明当时在忙什么?"


def test_zh_plural_pronoun_takes_the_group_the_answer_introduced() -> None:
    history = [user("星河产业园是由谁合作共建的?"), assistant("由青山区与白水市合作共建。")]
    assert RULES.rewrite("它们的股比是多少?", history) == "青山区与白水市的股比是多少?"


def test_zh_demonstrative_takes_a_name_from_the_history_that_ends_in_its_noun() -> None:
    history = [user("青山区和白水市签订的是什么协议?"), assistant("两地签订了《星河合作协议》。")]
    assert RULES.rewrite("这个协议是什么时候签的?", history) == "星河合作协议是什么时候签的?"
    # No such name: "X的<noun>".
    history = [user("青山区和白水市签订了什么?")]
    assert RULES.rewrite("这个文件是什么时候签的?", history) == "青山区和白水市的文件是什么时候签的?"


def test_zh_ellipsis_gets_the_subject_prepended() -> None:
    history = [user("星河产业园目前入驻了几家企业?"), assistant("目前入驻企业4家。")]
    assert RULES.rewrite("还有几家在洽谈?", history) == "星河产业园还有几家在洽谈?"
    assert RULES.rewrite("那股比呢?", history) == "星河产业园的股比呢?"


def test_zh_qizhong_refers_to_what_the_previous_question_counted() -> None:
    history = [user("星河产业园目前入驻了几家企业?")]
    assert RULES.rewrite("其中有几家来自白水市?", history) == "星河产业园的企业中有几家来自白水市?"


def test_zh_topic_switch_asks_the_previous_question_about_the_new_entity() -> None:
    history = [user("青山区目前有几家企业入驻?"), assistant("4家。")]
    assert RULES.rewrite("那白水市呢?", history) == "白水市目前有几家企业入驻?"


def test_zh_standalone_question_and_words_that_only_look_like_pronouns_are_unchanged() -> None:
    history = [user("星河产业园目前入驻了几家企业?")]
    for q in ("白水市有多少个合作领域?", "星河产业园的其他企业来自哪里?", "园区应该如何吸引更多的高端人才落户?"):
        assert RULES.rewrite(q, history) == q


def test_a_chain_of_follow_ups_keeps_the_entity_of_older_turns() -> None:
    history = [user("星河产业园目前入驻了几家企业?"), assistant("4家。"), user("还有呢?"), assistant("另有2家在洽谈。")]
    assert RULES.rewrite("它的股比是多少?", history) == "星河产业园的股比是多少?"


def test_no_history_means_no_rewrite() -> None:
    assert RULES.rewrite("那它的股比呢?", []) == "那它的股比呢?"
    assert RULES.rewrite("What is its ratio?", [assistant("Hello.")]) == "What is its ratio?"


def test_zh_question_after_english_history_stays_chinese() -> None:
    history = [user("How many companies are in the Xinghe park?")]
    out = RULES.rewrite("它的股比呢?", history)
    assert out == "星河产业园的股比呢?"
    assert detect_language(out) == "zh"


# ---------------------------------------------------------------------------- rules, English


def test_en_and_ellipsis_becomes_a_standalone_question_about_the_entity() -> None:
    history = [user("How many companies have moved into the Xinghe park?"), assistant("Four companies.")]
    out = RULES.rewrite("And how many are negotiating?", history)
    assert out == "For the Xinghe park, how many are negotiating?"


def test_en_possessive_pronoun() -> None:
    history = [user("Who co-built the Xinghe Industrial Park?"), assistant("Two districts.")]
    assert RULES.rewrite("What is its shareholding ratio?", history) == (
        "What is the Xinghe Industrial Park's shareholding ratio?")


def test_en_personal_pronoun_takes_the_person_in_the_answer() -> None:
    history = [user("Who is the investment manager of the Xinghe park?"), assistant("Wang Ming.")]
    assert RULES.rewrite("What did he say about new plants?", history) == "What did Wang Ming say about new plants?"


def test_en_of_them_refers_to_what_was_counted() -> None:
    history = [user("How many companies have moved into the Xinghe park?")]
    assert RULES.rewrite("How many of them are from Baishui?", history) == (
        "How many of the companies in the Xinghe park are from Baishui?")


def test_en_demonstrative_with_a_noun_takes_the_matching_name() -> None:
    history = [user("What did Qingshan District and Baishui sign?"),
               assistant("They signed the Xinghe Cooperation Agreement.")]
    assert RULES.rewrite("When was this agreement signed?", history) == (
        "When was the Xinghe Cooperation Agreement signed?")


def test_en_topic_switch() -> None:
    history = [user("How many chains are led by Qingshan?")]
    assert RULES.rewrite("What about Baishui?", history) == "How many chains are led by Baishui?"


def test_en_standalone_and_relative_that_are_unchanged() -> None:
    history = [user("How many companies have moved into the Xinghe park?")]
    for q in ("Which company that builds plants in Baishui is named?", "How many firms are in Qingshan District?"):
        assert RULES.rewrite(q, history) == q


# ---------------------------------------------------------------------------- answer frames
# Answers come framed: "据<outlet>(<date>)报道:" / "According to <outlet> (<date>):", [n] markers,
# a "Key terms:" line, or a refusal listing source titles. None of that is what "it" means.

ZH_FRAMED = "据华西晨报(2023-05-02)报道:星河产业园由青山区与白水市合作共建[1]。"
EN_FRAMED = ("According to Huaxi Morning Post (2023-05-02): “星河产业园由青山区与白水市合作共建。” [1]\n"
             "Key terms: 星河产业园 = Xinghe Industrial Park; 青山区 = Qingshan District; 白水市 = Baishui.")
ZH_REFUSAL = ("抱歉,现有资料中没有找到这个问题的答案。最相关的来源:《青山区与白水市共建星河产业园》(华西晨报, 2023-05-02)；"
              "《王明谈招商》(华西晨报, 2023-05-03)。")
EN_REFUSAL = ("Sorry, the sources don't say. Closest sources: “Qingshan District and Baishui sign the Xinghe deal” "
              "(Huaxi Morning Post, 2023-05-02); “Wang Ming on investment” (Huaxi Morning Post, 2023-05-03).")


def test_answer_content_keeps_the_claims_and_drops_the_frame() -> None:
    assert answer_content(ZH_FRAMED) == "星河产业园由青山区与白水市合作共建。"
    assert answer_content(EN_FRAMED) == "“星河产业园由青山区与白水市合作共建。”"
    assert answer_content("据报道:星河产业园有4家企业[1][2]") == "星河产业园有4家企业"
    assert answer_content("According to the source: “星河产业园有4家企业。” [1]") == "“星河产业园有4家企业。”"
    # A "来源:" inside a quoted claim is content, not a source list.
    assert answer_content("据华西晨报报道:资金来源:白水市财政[1]。") == "资金来源:白水市财政。"


def test_a_refusal_has_no_content() -> None:
    for text in (ZH_REFUSAL, EN_REFUSAL, "资料中没有提到。", "The sources do not say."):
        assert answer_content(text) == ""


def test_zh_follow_up_takes_the_entity_of_the_quote_not_the_outlet_of_the_frame() -> None:
    # The previous question names no entity; the answer's quote does, its frame names an outlet.
    history = [user("哪个园区入驻了4家企业?"), assistant("据华西晨报(2023-05-02)报道:星河产业园目前入驻企业4家[1]。")]
    assert RULES.rewrite("那它的股比呢?", history) == "星河产业园的股比呢?"
    assert RULES.rewrite("那股比呢?", history) == "星河产业园的股比呢?"


def test_en_follow_up_takes_the_entity_of_the_quote_not_the_outlet_of_the_frame() -> None:
    history = [user("Which park has four companies?"),
               assistant("According to Huaxi Morning Post (2023-05-02): “星河产业园目前入驻企业4家。” [1]\n"
                         "Key terms: 星河产业园 = Xinghe Industrial Park.")]
    assert RULES.rewrite("Who co-built it?", history) == "Who co-built Xinghe Industrial Park?"
    assert RULES.rewrite("And how big is it?", history) == "How big is Xinghe Industrial Park?"


def test_plural_pronoun_takes_the_group_the_quote_introduced_in_both_languages() -> None:
    # The outlet in the frame must not count as one more entity the answer introduced.
    assert RULES.rewrite("它们的股比是多少?", [user("星河产业园是由谁合作共建的?"), assistant(ZH_FRAMED)]) == (
        "青山区与白水市的股比是多少?")
    assert RULES.rewrite("What is their shareholding ratio?", [user("Who co-built the Xinghe park?"),
                                                               assistant(EN_FRAMED)]) == (
        "What is Qingshan District and Baishui's shareholding ratio?")


def test_the_previous_questions_person_comes_before_the_persons_the_answer_quotes() -> None:
    history = [user("王明在星河产业园负责什么?"), assistant("据华西晨报(2023-05-02)报道:李华介绍,王明负责招商[1]。")]
    assert RULES.rewrite("他是哪一年到园区的?", history) == "王明是哪一年到园区的?"
    history = [user("What is Wang Ming in charge of?"),
               assistant("According to Huaxi Morning Post (2023-05-02): “李华介绍,王明负责招商。” [1]")]
    assert RULES.rewrite("When did he join?", history) == "When did Wang Ming join?"


def test_after_a_refusal_the_follow_up_is_about_the_previous_question_not_a_listed_title() -> None:
    # "星火园" / "Sparkfield Park" are not in the glossary; the listed titles are full of glossary names.
    assert RULES.rewrite("那它的面积呢?", [user("星火园的股比是多少?"), assistant(ZH_REFUSAL)]) == "星火园的面积呢?"
    assert RULES.rewrite("When did it open?", [user("Who owns Sparkfield Park?"), assistant(EN_REFUSAL)]) == (
        "When did Sparkfield Park open?")


def test_older_assistant_turns_are_read_without_their_frame_too() -> None:
    history = [user("哪个园区入驻了4家企业?"), assistant("据华西晨报(2023-05-02)报道:星河产业园目前入驻企业4家[1]。"),
               user("还有呢?"), assistant("据华西晨报(2023-05-03)报道:另有2家在洽谈[1]。")]
    assert RULES.rewrite("它的股比是多少?", history) == "星河产业园的股比是多少?"


# ---------------------------------------------------------------------------- LLM rewriter


def test_llm_rewriter_returns_the_models_cleaned_question() -> None:
    model = ScriptedChatModel().enqueue('Standalone question: "What is the Xinghe park\'s shareholding ratio?"')
    rw = LLMRewriter(model, fallback=RULES)
    history = [user("Who co-built the Xinghe park?"), assistant("Two districts.")]
    assert rw.rewrite("What is its ratio?", history) == "What is the Xinghe park's shareholding ratio?"
    (call,) = model.calls
    assert call["kwargs"].get("temperature") == 0
    prompt = "\n".join(str(m.content) for m in call["messages"])
    assert "Who co-built the Xinghe park?" in prompt and "What is its ratio?" in prompt


def test_llm_rewriter_strips_thinking_and_keeps_chinese() -> None:
    model = ScriptedChatModel().enqueue("<think>指代星河产业园</think>\n星河产业园的股比是多少?")
    rw = LLMRewriter(model, fallback=RULES)
    assert rw.rewrite("它的股比是多少?", [user("星河产业园是由谁共建的?")]) == "星河产业园的股比是多少?"
    assert "中文" in str(model.calls[0]["messages"][0].content)


@pytest.mark.parametrize(
    "reply",
    [
        RuntimeError("connection refused"),
        "What is the Xinghe park's shareholding ratio?",  # wrong language for a Chinese question
        "",  # empty
        "   ",
        "星河产业园" * 100,  # over-long
    ],
)
def test_llm_rewriter_falls_back_to_the_rules(reply: str | BaseException) -> None:
    model = ScriptedChatModel().enqueue(reply)
    rw = LLMRewriter(model, fallback=RULES)
    history = [user("星河产业园是由谁合作共建的?")]
    assert rw.rewrite("那它的股比呢?", history) == "星河产业园的股比呢?"
    assert len(model.calls) == 1


def test_llm_rewriter_prompt_shows_assistant_turns_without_their_frame() -> None:
    model = ScriptedChatModel().enqueue("星河产业园的面积是多少?")
    history = [user("哪个园区入驻了4家企业?"), assistant("据华西晨报(2023-05-02)报道:星河产业园目前入驻企业4家[1]。"),
               user("星火园的股比是多少?"), assistant(ZH_REFUSAL)]
    LLMRewriter(model, fallback=RULES).rewrite("它的面积是多少?", history)
    prompt = str(model.calls[0]["messages"][-1].content)
    assert "助手: 星河产业园目前入驻企业4家。" in prompt
    assert f"助手: {NO_ANSWER['zh']}" in prompt
    for frame in ("华西晨报", "2023-05-02", "[1]", "王明谈招商", "最相关的来源"):
        assert frame not in prompt


def test_llm_rewriter_without_history_does_not_call_the_model() -> None:
    model = ScriptedChatModel()
    assert LLMRewriter(model, fallback=RULES).rewrite("星河产业园有几家企业?", []) == "星河产业园有几家企业?"
    assert model.calls == []


# ---------------------------------------------------------------------------- sessions


def test_session_store_persists_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "sessions.sqlite"
    store = SQLiteSessionStore(path)
    assert isinstance(store, SessionStore)
    sid = store.create()
    other = store.create()
    store.append(sid, user("星河产业园入驻了几家企业?"))
    store.append(sid, assistant("目前入驻企业4家。[1]"), answer={"answer": "目前入驻企业4家。[1]", "refused": False})
    store.append(other, user("unrelated"))

    reopened = SQLiteSessionStore(path)
    assert reopened.history(sid) == [user("星河产业园入驻了几家企业?"), assistant("目前入驻企业4家。[1]")]
    assert reopened.history(sid, last=1) == [assistant("目前入驻企业4家。[1]")]
    session = reopened.get(sid)
    assert session.session_id == sid
    assert [t.answer for t in session.turns] == [None, {"answer": "目前入驻企业4家。[1]", "refused": False}]
    assert reopened.history(other) == [user("unrelated")]
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unknown_session_raises(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.sqlite")
    for call in (lambda: store.history("nope"), lambda: store.get("nope"), lambda: store.append("nope", user("q"))):
        with pytest.raises(SessionNotFoundError) as info:
            call()
        assert isinstance(info.value, TongchengQAError)
        assert "nope" in str(info.value)


def test_session_store_rejects_an_invalid_role(tmp_path: Path) -> None:
    store = SQLiteSessionStore(tmp_path / "s.sqlite")
    sid = store.create()
    with pytest.raises(ValueError, match="role"):
        store.append(sid, Turn("system", "x"))  # type: ignore[arg-type]
    assert store.history(sid) == []
