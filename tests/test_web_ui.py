"""The chat page in a real headless Chromium, against a real ``tongcheng-qa serve`` process.

One server (real embedding model, the repo corpus) and one browser per module; a fresh
browser context (clean storage) per test. Expected facts are checked against what the API
itself answers (httpx), so the tests follow the engine rather than hard-coding its wording.
Screenshots of the main states go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import CORPUS, REPO
from live_server import ApiServer
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    Route,
    ViewportSize,
    expect,
    sync_playwright,
)

pytestmark = pytest.mark.slow

SHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
PHONE: ViewportSize = {"width": 360, "height": 740}

Q_COUNT = "金什合作产业园入驻了几家企业\uff1f"  # full-width ?, as a Chinese IME types it
Q_WHO = "金什合作产业园由哪两地共建\uff1f"
Q_FOLLOW = "它入驻了几家企业\uff1f"
Q_EN = "Who co-built the Jinshi cooperative industrial park?"
Q_REFUSED = "金什合作产业园的园区面积是多少平方公里\uff1f"
FACT_COUNT = "入驻企业4家"
XSS = "<img src=x onerror=window.__xss=1>"

if not Path(CHROMIUM).exists():  # pragma: no cover - scripts/test.sh installs it
    _why = f"{CHROMIUM} is not installed: run scripts/install_browser.sh"
    if os.environ.get("TONGCHENG_QA_REQUIRE_BROWSER") == "1":  # CI: a missing browser is a failure
        pytest.fail(_why, pytrace=False)
    pytest.skip(_why, allow_module_level=True)


# -- fixtures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("web_ui")
    corpus = root / "corpus"
    shutil.copytree(CORPUS, corpus)
    with ApiServer(root / "data", corpus) as srv:
        yield srv


@pytest.fixture(scope="module")
def api(server: ApiServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def reference(api: httpx.Client) -> Any:
    """What ``POST /v1/ask`` answers for a question (cached): the page must show the same."""
    cache: dict[str, dict[str, Any]] = {}

    def get(question: str) -> dict[str, Any]:
        if question not in cache:
            res = api.post("/v1/ask", json={"question": question})
            assert res.status_code == 200, res.text
            cache[question] = res.json()
        return cache[question]

    return get


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield b
    b.close()


class PageProblems:
    """Script errors and console errors (a CSP violation is one) seen by a page."""

    def __init__(self) -> None:
        self.items: list[str] = []
        self.allowed: list[str] = []  # substrings of console errors a test provokes on purpose

    def watch(self, page: Page) -> Page:
        page.on("pageerror", lambda exc: self.items.append(f"pageerror: {exc}"))
        page.on("console", self._console)
        return page

    def _console(self, msg: Any) -> None:
        if msg.type == "error" and not any(a in msg.text for a in self.allowed):
            self.items.append(f"console.error: {msg.text}")


@pytest.fixture
def problems() -> PageProblems:
    return PageProblems()


def new_context(browser: Browser, *, locale: str = "zh-CN", viewport: ViewportSize = DESKTOP,
                **kwargs: Any) -> BrowserContext:
    ctx = browser.new_context(locale=locale, viewport=viewport, **kwargs)
    ctx.set_default_timeout(20_000)
    return ctx


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = new_context(browser)
    yield ctx
    ctx.close()


def open_page(ctx: BrowserContext, server: ApiServer, problems: PageProblems) -> Page:
    page = problems.watch(ctx.new_page())
    page.goto(server.url + "/")
    page.wait_for_selector("body[data-ready]")
    return page


@pytest.fixture
def page(context: BrowserContext, server: ApiServer, problems: PageProblems) -> Iterator[Page]:
    p = open_page(context, server, problems)
    yield p
    assert problems.items == [], problems.items


# -- helpers -------------------------------------------------------------------------------------

def shot(page: Page, name: str, *, full_page: bool = True) -> None:
    """A screenshot of the whole page (the viewport is stretched to the document, so the sticky
    header and composer sit where a reader sees them)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    if not full_page:
        page.screenshot(path=path)
        return
    size = page.viewport_size or DESKTOP
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height))})
    try:
        page.screenshot(path=path)
    finally:
        page.set_viewport_size(size)


def ask(page: Page, question: str) -> Any:
    """Type a question, press Enter, wait until its answer (or error) is final; the answer locator."""
    before = page.locator(".msg-bot").count()
    page.fill("#question", question)
    page.press("#question", "Enter")
    msg = page.locator(".msg-bot").nth(before)
    expect(msg).to_have_attribute("data-state", re.compile("^(answered|refused|error)$"))
    expect(page.locator("#send")).to_be_enabled()
    return msg


def shown_text(answer: str) -> str:
    """The answer as the page shows it: each [n] marker becomes a chip whose text is n."""
    return re.sub(r"\[(\d+)\]", r"\1", answer)


def session_id(page: Page) -> str | None:
    return page.locator("#thread").get_attribute("data-session-id")


def no_horizontal_scroll(page: Page) -> None:
    sw, cw = page.evaluate("[document.scrollingElement.scrollWidth, document.scrollingElement.clientWidth]")
    assert sw <= cw, f"horizontal overflow: scrollWidth {sw} > clientWidth {cw}"


# -- tests ---------------------------------------------------------------------------------------

def test_chinese_question_streams_an_answer_with_citation_chips(page: Page, reference: Any) -> None:
    ref = reference(Q_COUNT)
    assert not ref["refused"] and FACT_COUNT in ref["answer"]
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")  # navigator.language zh-CN
    expect(page.locator("#thread")).to_have_attribute("aria-live", "polite")
    shot(page, "01-empty-zh")

    # The example question on the empty state asks it.
    page.get_by_role("button", name=Q_COUNT).click()
    msg = page.locator(".msg-bot").first
    expect(msg).to_have_attribute("data-state", "answered")
    expect(page.locator(".msg-user .bubble")).to_have_text(Q_COUNT)
    expect(page.locator("#empty")).to_be_hidden()

    assert int(msg.get_attribute("data-tokens") or 0) > 1  # rendered from streamed token events
    answer = msg.locator('[data-role="answer"]')
    assert answer.text_content() == shown_text(ref["answer"])  # the final text replaced the streamed one
    assert FACT_COUNT in (answer.text_content() or "")
    chips = answer.locator("button.chip")
    # one chip per [n] marker: a short answer ("4家[1]") and its quote may cite the same source
    expect(chips).to_have_count(len(re.findall(r"\[\d+\]", ref["answer"])))
    assert len(ref["citations"]) >= 1
    first = ref["citations"][0]
    expect(chips.first).to_have_text(str(first["n"]))
    expect(chips.first).to_have_attribute("aria-label", f"来源 {first['n']}\uff1a{first['title']}")
    expect(msg.locator(".source-list li")).to_have_count(len(ref["citations"]))
    expect(msg.locator(".source-item").first).to_contain_text(first["quote"])
    expect(msg).to_have_attribute("aria-busy", "false")
    expect(page.locator("#send")).to_have_text("发送")
    shot(page, "02-answer-zh")


def test_citation_chip_opens_panel_with_highlighted_quote(page: Page, api: httpx.Client, reference: Any) -> None:
    ref = reference(Q_COUNT)
    cit = ref["citations"][0]
    article = api.get(f"/v1/articles/{cit['article_id']}").json()
    assert article["body"][cit["start"]:cit["end"]] == cit["quote"]

    msg = ask(page, Q_COUNT)
    chip = msg.locator("button.chip").first
    chip.click()
    panel = page.get_by_role("dialog")
    expect(panel).to_be_visible()
    expect(panel).to_have_attribute("aria-labelledby", "panel-title")
    expect(panel.locator("#panel-title")).to_have_text(cit["title"])
    expect(page.locator("#panel-source")).to_have_text(cit["source"])
    expect(page.locator("#panel-date")).to_have_text(cit["date"])
    link = panel.locator("#panel-link")
    expect(link).to_have_attribute("href", cit["url"])
    expect(link).to_have_attribute("target", "_blank")
    assert "noopener" in (link.get_attribute("rel") or "")

    mark = panel.locator("mark")
    expect(mark).to_have_count(1)
    expect(mark).to_have_text(cit["quote"])
    expect(page.locator("#panel-status")).to_have_text("")  # loaded, no fallback notice
    # The passage is the whole paragraph (line) of the article around the quote.
    paragraph = next(line for line in article["body"].split("\n") if cit["quote"] in line)
    assert paragraph != cit["quote"]  # a real test of the context around the quote
    assert page.locator("#panel-quote").text_content() == paragraph
    # Focus moved into the dialog; the chip shows which source is open.
    assert page.evaluate("document.getElementById('panel').contains(document.activeElement)")
    expect(chip).to_have_class(re.compile(r"\bis-active\b"))
    shot(page, "03-citation-panel")

    # A second chip re-targets the open panel.
    if len(ref["citations"]) > 1:
        second = ref["citations"][1]
        msg.locator("button.chip").filter(has_text=re.compile(rf"^{second['n']}$")).first.click()
        expect(page.locator("#panel-kicker")).to_contain_text(f"[{second['n']}]")
        expect(panel.locator("mark")).to_have_text(second["quote"])

    page.locator("#panel-close").click()
    expect(panel).to_be_hidden()


def test_follow_up_question_uses_the_session(page: Page, api: httpx.Client) -> None:
    first = ask(page, Q_WHO)
    expect(first).to_have_attribute("data-state", "answered")
    expect(first.locator('[data-role="answer"]')).to_contain_text("什邡")
    sid = session_id(page)
    assert sid

    second = ask(page, Q_FOLLOW)  # "it": only answerable with the first question as context
    expect(second).to_have_attribute("data-state", "answered")
    expect(second.locator('[data-role="answer"]')).to_contain_text(FACT_COUNT)
    expect(second.locator("button.chip").first).to_be_visible()
    assert session_id(page) == sid
    assert page.evaluate("sessionStorage.getItem('tongcheng_qa.session')") == sid

    session = api.get(f"/v1/sessions/{sid}").json()
    turns = session["turns"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[0]["content"] == Q_WHO and turns[2]["content"] == Q_FOLLOW
    assert "金什合作产业园" in turns[3]["answer"]["standalone_question"]  # the pronoun was resolved
    shot(page, "04-follow-up")

    # A reload restores the conversation from the server, chips included.
    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator(".msg-bot")).to_have_count(2)
    expect(page.locator(".msg-user .bubble").nth(1)).to_have_text(Q_FOLLOW)
    expect(page.locator(".msg-bot").nth(1).locator("button.chip").first).to_be_visible()
    assert session_id(page) == sid


def test_english_question_gets_an_english_answer(browser: Browser, server: ApiServer, reference: Any,
                                                  problems: PageProblems) -> None:
    ref = reference(Q_EN)
    assert ref["language"] == "en" and not ref["refused"] and ref["citations"]
    ctx = new_context(browser, locale="en-US")
    try:
        page = open_page(ctx, server, problems)
        expect(page.locator("html")).to_have_attribute("lang", "en")  # from navigator.language
        expect(page.locator("#send")).to_have_text("Send")
        msg = ask(page, Q_EN)
        expect(msg).to_have_attribute("data-state", "answered")
        expect(msg).to_have_attribute("lang", "en")
        answer = msg.locator('[data-role="answer"]')
        assert answer.text_content() == shown_text(ref["answer"])
        expect(answer).to_contain_text("According to")
        expect(answer).to_contain_text("Jinniu")
        chip = answer.locator("button.chip").first
        expect(chip).to_have_attribute("aria-label", f"Source 1: {ref['citations'][0]['title']}")
        expect(msg.locator(".sources-title")).to_have_text("Sources")
        shot(page, "05-answer-en")
        assert problems.items == []
    finally:
        ctx.close()


def test_refusal_is_shown_distinctly_with_the_closest_source(page: Page, reference: Any) -> None:
    ref = reference(Q_REFUSED)
    assert ref["refused"] is True and ref["citations"] == []
    ok = ask(page, Q_COUNT)
    msg = ask(page, Q_REFUSED)
    expect(msg).to_have_attribute("data-state", "refused")
    expect(msg).to_have_class(re.compile(r"\bmsg-refused\b"))
    expect(msg.locator(".refused-badge")).to_contain_text("资料中未找到")
    expect(msg.locator('[data-role="answer"]')).to_have_text(ref["answer"])
    expect(msg.locator("button.chip")).to_have_count(0)
    expect(msg.locator(".source-list")).to_have_count(0)
    # The answer names the closest article: it is listed with its link.
    title = page.evaluate("fetch('/v1/articles/000_seed.md').then(r => r.json()).then(a => a.title)")
    assert title in ref["answer"]
    nearest = msg.locator(".nearest")
    expect(nearest).to_be_visible()
    expect(nearest.get_by_role("link", name=re.compile(re.escape(title)))).to_have_attribute(
        "href", re.compile(r"^https://"))
    # Visibly different from an answer: its own background and accent border.
    style = "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.borderLeftColor]; }"
    assert msg.locator(".card").evaluate(style) != ok.locator(".card").evaluate(style)
    shot(page, "06-refusal")


def test_language_toggle_relabels_and_persists(page: Page) -> None:
    label = page.locator("label[for=question]")
    expect(label).to_have_text("你的问题")
    expect(page.locator("#send")).to_have_text("发送")
    msg = ask(page, Q_COUNT)
    expect(msg.locator(".copy-label")).to_have_text("复制回答及出处")
    answer_before = msg.locator('[data-role="answer"]').text_content()

    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#send")).to_have_text("Send")
    expect(label).to_have_text("Your question")
    expect(page.locator("#question")).to_have_attribute("placeholder", "Ask a question about the news…")
    expect(page.locator("#new-chat")).to_have_text(re.compile("New conversation"))
    expect(page.get_by_role("button", name="English")).to_have_attribute("aria-pressed", "true")
    # UI strings inside the thread follow the toggle; the answer itself stays in its language.
    expect(msg.locator(".copy-label")).to_have_text("Copy answer with citations")
    expect(msg.locator("button.chip").first).to_have_attribute("aria-label", re.compile(r"^Source 1: "))
    assert msg.locator('[data-role="answer"]').text_content() == answer_before
    assert page.evaluate("localStorage.getItem('tongcheng_qa.lang')") == "en"

    page.reload()
    page.wait_for_selector("body[data-ready]")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#send")).to_have_text("Send")
    expect(label).to_have_text("Your question")
    expect(page.locator(".example").first).to_have_text("Who co-built the Jinshi cooperative industrial park?")
    shot(page, "07-english-ui")

    page.get_by_role("button", name="中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.locator("#send")).to_have_text("发送")


def test_new_conversation_clears_thread_and_session(page: Page, api: httpx.Client) -> None:
    ask(page, Q_WHO)
    first_sid = session_id(page)
    assert first_sid
    page.get_by_role("button", name="新对话").click()
    expect(page.locator("#thread > *")).to_have_count(0)
    expect(page.locator("#empty")).to_be_visible()
    assert session_id(page) is None
    assert page.evaluate("sessionStorage.getItem('tongcheng_qa.session')") is None
    expect(page.locator("#question")).to_be_focused()

    msg = ask(page, Q_FOLLOW)  # no history now: "it" has nothing to refer to
    second_sid = session_id(page)
    assert second_sid and second_sid != first_sid
    expect(page.locator(".msg-bot")).to_have_count(1)
    assert msg.get_attribute("data-state") in {"answered", "refused"}
    assert len(api.get(f"/v1/sessions/{first_sid}").json()["turns"]) == 2
    new_turns = api.get(f"/v1/sessions/{second_sid}").json()["turns"]
    assert [t["content"] for t in new_turns if t["role"] == "user"] == [Q_FOLLOW]


def test_phone_width_has_no_horizontal_scroll_and_a_full_width_panel(
        browser: Browser, server: ApiServer, problems: PageProblems) -> None:
    ctx = new_context(browser, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        page = open_page(ctx, server, problems)
        no_horizontal_scroll(page)
        shot(page, "08-phone-empty")
        msg = ask(page, Q_COUNT)
        ask(page, Q_REFUSED)
        no_horizontal_scroll(page)
        composer = page.locator("#ask-form").bounding_box()
        assert composer and composer["x"] >= 0 and composer["x"] + composer["width"] <= PHONE["width"]
        page.evaluate("window.scrollTo(0, 0)")
        shot(page, "09-phone-thread")

        msg.locator("button.chip").first.tap()
        panel = page.get_by_role("dialog")
        expect(panel).to_be_visible()
        expect(panel.locator("mark")).to_have_count(1)
        box = panel.bounding_box()
        assert box is not None
        assert box["x"] == 0 and box["width"] == PHONE["width"]
        assert abs(box["y"] + box["height"] - PHONE["height"]) <= 1  # a bottom sheet
        expect(panel).to_have_attribute("aria-modal", "true")
        expect(page.locator("#backdrop")).to_be_visible()
        for _ in range(3):  # a modal sheet keeps the keyboard inside it
            page.keyboard.press("Tab")
            assert page.evaluate("document.getElementById('panel').contains(document.activeElement)")
        no_horizontal_scroll(page)
        shot(page, "10-phone-panel", full_page=False)

        page.keyboard.press("Escape")
        expect(panel).to_be_hidden()
        expect(page.locator("#backdrop")).to_be_hidden()
        assert problems.items == []
    finally:
        ctx.close()


def test_markup_in_questions_and_answers_stays_text(page: Page, server: ApiServer) -> None:
    # A real round trip: the question bubble shows the literal markup.
    question = f"{XSS} {Q_COUNT}"
    ask(page, question)
    expect(page.locator(".msg-user .bubble")).to_have_text(question)

    # A hostile answer, citation and article (as if the corpus or a model produced them).
    evil = '<img src=x onerror="window.__xss=2"><script>window.__xss=3</script>'
    title = f"Title {evil}"
    quote = f"Quote {evil}."
    body = f"Intro.\nBefore. {quote} After <b>bold</b>.\nOutro."
    start = body.index(quote)
    final = {
        "answer": f"Answer {evil} [1]", "language": "en", "refused": False, "standalone_question": "q",
        "citations": [{"n": 1, "article_id": "evil/x.md", "title": title, "date": "2024-01-01",
                       "source": f"Outlet {evil}", "url": "javascript:window.__xss=4", "chunk_id": "evil/x.md#1",
                       "quote": quote, "start": start, "end": start + len(quote)}],
        "retrieved": [], "engine": "extractive", "timings_ms": {}, "session_id": "s-evil",
    }
    sse = "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in
                  [("token", {"text": f"Answer {evil}"}), ("final", final), ("done", {})])

    def fake_stream(route: Route) -> None:
        route.fulfill(status=200, headers={"Content-Type": "text/event-stream"}, body=sse)

    article_urls: list[str] = []

    def fake_article(route: Route) -> None:
        article_urls.append(route.request.url)
        route.fulfill(status=200, json={"article_id": "evil/x.md", "title": title, "date": None, "source": None,
                                        "url": None, "chunks": 1, "body": body})

    page.route("**/v1/ask/stream", fake_stream)
    page.route("**/v1/articles/**", fake_article)
    msg = ask(page, "anything")
    expect(msg).to_have_attribute("data-state", "answered")
    expect(msg.locator('[data-role="answer"]')).to_have_text("Answer " + evil + " 1")
    msg.locator("button.chip").click()
    panel = page.get_by_role("dialog")
    expect(panel.locator("#panel-title")).to_have_text(title)
    expect(panel.locator("mark")).to_have_text(quote)
    expect(panel.locator("#panel-quote")).to_have_text(f"Before. {quote} After <b>bold</b>.")
    expect(panel.locator("#panel-link")).to_be_hidden()  # a javascript: URL is never linked
    assert article_urls and article_urls[0].endswith("/v1/articles/evil/x.md")  # the slash is kept

    assert page.evaluate("window.__xss") is None
    assert page.locator("#thread img, #thread script, #thread b, #panel img, #panel script, #panel b").count() == 0
    shot(page, "11-markup-as-text")


def fake_answer_routes(page: Page, body: str, quote: str, *, title: str = "Astral") -> None:
    """Serve a one-citation answer and its article from the page's own routes; offsets as the
    server computes them: Python code points."""
    start = body.index(quote)
    final = {
        "answer": "Answer [1]", "language": "en", "refused": False, "standalone_question": "q",
        "citations": [{"n": 1, "article_id": "a.md", "title": title, "date": None, "source": None, "url": None,
                       "chunk_id": "a.md#1", "quote": quote, "start": start, "end": start + len(quote)}],
        "retrieved": [], "engine": "extractive", "timings_ms": {},
    }
    sse = f"event: final\ndata: {json.dumps(final)}\n\nevent: done\ndata: {{}}\n\n"
    page.route("**/v1/ask/stream", lambda route: route.fulfill(
        status=200, headers={"Content-Type": "text/event-stream"}, body=sse))
    page.route("**/v1/articles/**", lambda route: route.fulfill(status=200, json={
        "article_id": "a.md", "title": title, "date": None, "source": None, "url": None, "chunks": 1, "body": body}))


def test_quote_offsets_are_code_points_not_utf16_units(page: Page) -> None:
    quote = "入驻企业4家。"
    body = "😀 标题 𠮷\n\n第一段 𠮷野家 𝒳,前文。" + quote + "后文 😀。\n第二段。"
    assert len(body.encode("utf-16-le")) // 2 > len(body)  # JS indices would be off by the astral characters
    fake_answer_routes(page, body, quote)
    msg = ask(page, "anything")
    msg.locator("button.chip").click()
    panel = page.get_by_role("dialog")
    expect(panel.locator("mark")).to_have_text(quote)
    expect(panel.locator("#panel-quote")).to_have_text("第一段 𠮷野家 𝒳,前文。" + quote + "后文 😀。")
    expect(page.locator("#panel-status")).to_have_text("")
    expect(page.locator("#panel-source")).to_have_text("未注明")  # missing fields are said, not blank


def test_copy_answer_with_citations(browser: Browser, server: ApiServer, reference: Any,
                                    problems: PageProblems) -> None:
    ref = reference(Q_COUNT)
    ctx = new_context(browser)
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
    # Record what is written, then let the real clipboard have it too.
    ctx.add_init_script("""
        const real = navigator.clipboard.writeText.bind(navigator.clipboard);
        navigator.clipboard.writeText = (text) => { window.__copied = text; return real(text); };
    """)
    try:
        page = open_page(ctx, server, problems)
        msg = ask(page, Q_COUNT)
        button = msg.get_by_role("button", name="复制回答及出处")
        button.click()
        expect(msg.locator(".copy-label")).to_have_text("已复制")
        expect(msg.locator(".copy-status")).to_have_text("回答及出处已复制到剪贴板")
        copied = page.evaluate("window.__copied")
        assert page.evaluate("navigator.clipboard.readText()") == copied
        c = ref["citations"][0]
        assert copied.startswith(ref["answer"])
        assert f"[1] {c['title']} — {c['source']}, {c['date']} — {c['url']}" in copied
        assert f"“{c['quote']}”" in copied
        assert len(re.findall(r"^\[\d+\] ", copied, flags=re.MULTILINE)) == len(ref["citations"])
        shot(page, "12-copied")
        assert problems.items == []
    finally:
        ctx.close()


def test_keyboard_opens_and_closes_the_source_panel(page: Page) -> None:
    # Shift+Enter is a new line, not a send.
    page.locator("#question").focus()
    page.keyboard.type("第一行")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("第二行")
    expect(page.locator("#question")).to_have_value("第一行\n第二行")
    expect(page.locator(".msg")).to_have_count(0)
    page.fill("#question", "")

    ask(page, Q_COUNT)
    page.locator("#new-chat").focus()
    for _ in range(20):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.classList.contains('chip')"):
            break
    else:
        pytest.fail("Tab never reached a citation chip")
    chip_label = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert chip_label.startswith("来源 1\uff1a")
    outline = page.evaluate("(() => { const s = getComputedStyle(document.activeElement);"
                            " return [s.outlineStyle, parseFloat(s.outlineWidth)]; })()")
    assert outline[0] != "none" and outline[1] >= 2  # a visible focus ring

    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog")
    expect(panel).to_be_visible()
    expect(page.locator("#panel-close")).to_be_focused()
    expect(panel.locator("mark")).to_have_count(1)
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    assert page.evaluate("document.activeElement.getAttribute('aria-label')") == chip_label


def test_errors_are_shown_and_the_send_button_comes_back(page: Page, problems: PageProblems) -> None:
    problems.allowed.append("Failed to load resource")  # the browser logs the failed requests
    def too_many(route: Route) -> None:
        route.fulfill(status=429, json={"error": "Too many requests: at most 120 a minute."})

    page.route("**/v1/ask/stream", too_many)
    msg = ask(page, Q_COUNT)
    expect(msg).to_have_attribute("data-state", "error")
    expect(msg.get_by_role("alert")).to_contain_text("Too many requests: at most 120 a minute. (HTTP 429)")
    expect(page.locator("#send")).to_be_enabled()
    shot(page, "13-error")

    page.unroute("**/v1/ask/stream")
    page.route("**/v1/ask/stream", lambda route: route.abort("connectionrefused"))
    msg = ask(page, Q_COUNT)
    expect(msg.get_by_role("alert")).to_contain_text("无法连接服务器")

    page.unroute("**/v1/ask/stream")
    broken = 'event: token\ndata: {"text": "据成都日报"}\n\nevent: error\ndata: {"error": "Index unavailable."}\n\n'
    page.route("**/v1/ask/stream", lambda route: route.fulfill(
        status=200, headers={"Content-Type": "text/event-stream"}, body=broken))
    msg = ask(page, Q_COUNT)
    expect(msg.get_by_role("alert")).to_contain_text("Index unavailable.")
    expect(msg.locator(".answer-partial")).to_contain_text("据成都日报")

    # Retry asks again (for real this time) and replaces the failed turn.
    page.unroute("**/v1/ask/stream")
    msg.get_by_role("button", name="重试").click()
    expect(page.locator(".msg-bot").last).to_have_attribute("data-state", "answered")
    expect(page.locator(".msg-bot")).to_have_count(3)
    expect(page.locator("#send")).to_be_enabled()


def test_controls_are_labelled_and_text_has_contrast(page: Page) -> None:
    ask(page, Q_COUNT)
    ask(page, Q_REFUSED)
    page.locator("button.chip").first.click()
    expect(page.get_by_role("dialog")).to_be_visible()
    unnamed = page.evaluate("""() => [...document.querySelectorAll('button, textarea, a[href]')]
        .filter(el => el.offsetParent !== null)
        .filter(el => {
            const labelled = el.labels && el.labels.length && el.labels[0].textContent.trim();
            return !(labelled || (el.getAttribute('aria-label') || '').trim() || el.textContent.trim());
        }).map(el => el.outerHTML.slice(0, 80))""")
    assert unnamed == []
    low = page.evaluate("""() => {
        const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
        const lum = ([r, g, b]) => [r, g, b].map(v => { v /= 255; return v <= 0.03928 ? v / 12.92
            : Math.pow((v + 0.055) / 1.055, 2.4); }).reduce((a, v, i) => a + v * [0.2126, 0.7152, 0.0722][i], 0);
        const bg = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
            if (c.length === 3 || c[3] === 1) return c.slice(0, 3); } return [255, 255, 255]; };
        const bad = [];
        for (const el of document.querySelectorAll('body *')) {
            if (el.offsetParent === null || el.closest('.sr-only')) continue;
            const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
            if (!own) continue;
            const fg = rgb(getComputedStyle(el).color).slice(0, 3);
            const [a, b] = [lum(fg), lum(bg(el))];
            const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
            if (ratio < 4.5) bad.push(`${el.className || el.tagName}: ${ratio.toFixed(2)}`);
        }
        return bad;
    }""")
    assert low == []
