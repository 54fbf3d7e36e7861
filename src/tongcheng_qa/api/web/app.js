/* tongcheng_qa chat page: plain ES2020, no build step, no dependencies.
 *
 * Security rule for this file: server data (answers, quotes, titles, errors) is only ever put
 * into the page as text (textContent / createTextNode / attribute values), never as markup.
 */
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------------
  // Interface strings (the answer language follows the question; these follow the toggle)

  const STRINGS = {
    zh: {
      skip: '跳到提问框',
      appTitle: '同城问答',
      appTag: '成德眉资同城化 · 金什合作产业园',
      docTitle: '同城问答 · 成德眉资同城化新闻问答',
      langLabel: '界面语言',
      newChat: '新对话',
      threadLabel: '对话',
      emptyTitle: '有什么想了解的？',
      emptyText: '回答只依据收录的新闻报道，并逐句标注出处；资料里没有的内容，助手会直接告诉你。',
      examplesTitle: '试试这些问题',
      questionLabel: '你的问题',
      placeholder: '请输入你的问题…',
      send: '发送',
      sending: '回答中…',
      hint: 'Enter 发送，Shift+Enter 换行',
      disclaimer: '回答摘自新闻原文，请点击出处核对。',
      you: '你的问题',
      assistant: '助手回答',
      thinking: '正在检索资料并撰写回答…',
      sources: '来源',
      sourceChip: (n, title) => `来源 ${n}：${title}`,
      sourceItem: (n, title) => `查看来源 ${n}：${title}`,
      refusedLabel: '资料中未找到',
      refusedHelp: '收录的报道没有回答这个问题。可以换个问法，或询问报道中提到的内容。',
      nearest: '最相关的来源',
      copy: '复制回答及出处',
      copied: '已复制',
      copyFailed: '复制失败，请手动选择文字复制',
      copiedStatus: '回答及出处已复制到剪贴板',
      errorTitle: '出错了',
      retry: '重试',
      networkError: '无法连接服务器，请检查网络后重试。',
      streamCut: '回答意外中断，请重试。',
      httpError: (status) => `服务器返回错误（HTTP ${status}）。`,
      sessionGone: '会话已失效，下一个问题将开始新对话。',
      close: '关闭',
      outlet: '媒体',
      date: '日期',
      unknown: '未注明',
      openOriginal: '阅读原文',
      newTab: '（在新标签页打开）',
      quoteHeading: '引用的原文段落',
      kicker: (n) => `来源 [${n}]`,
      loadingArticle: '正在加载原文…',
      articleError: (msg) => `无法加载原文段落（${msg}），下面只显示引用的句子。`,
      quoteMismatch: '原文已更新，下面只显示引用的句子。',
      restoreError: '无法恢复之前的对话。',
      incomplete: '（回答不完整）',
    },
    en: {
      skip: 'Skip to the question box',
      appTitle: 'Tongcheng Q&A',
      appTag: 'Chengdu metropolitan integration · Jinshi park',
      docTitle: 'Tongcheng Q&A · news about Chengdu metropolitan integration',
      langLabel: 'Interface language',
      newChat: 'New conversation',
      threadLabel: 'Conversation',
      emptyTitle: 'What would you like to know?',
      emptyText: 'Answers come only from the collected news reports, with a source for every statement. If the sources don\u2019t say, the assistant tells you so.',
      examplesTitle: 'Try asking',
      questionLabel: 'Your question',
      placeholder: 'Ask a question about the news…',
      send: 'Send',
      sending: 'Answering…',
      hint: 'Enter to send, Shift+Enter for a new line',
      disclaimer: 'Answers quote the news reports; click a source to check it.',
      you: 'Your question',
      assistant: 'Assistant\u2019s answer',
      thinking: 'Searching the sources and writing the answer…',
      sources: 'Sources',
      sourceChip: (n, title) => `Source ${n}: ${title}`,
      sourceItem: (n, title) => `Show source ${n}: ${title}`,
      refusedLabel: 'Not in the sources',
      refusedHelp: 'The collected reports don\u2019t answer this question. Try rephrasing it, or ask about something the reports cover.',
      nearest: 'Closest sources',
      copy: 'Copy answer with citations',
      copied: 'Copied',
      copyFailed: 'Copy failed: select the text and copy it manually',
      copiedStatus: 'The answer and its sources were copied to the clipboard',
      errorTitle: 'Something went wrong',
      retry: 'Retry',
      networkError: 'Couldn\u2019t reach the server. Check your connection and try again.',
      streamCut: 'The answer was interrupted. Please try again.',
      httpError: (status) => `The server returned an error (HTTP ${status}).`,
      sessionGone: 'This conversation has expired; your next question starts a new one.',
      close: 'Close',
      outlet: 'Outlet',
      date: 'Date',
      unknown: 'not given',
      openOriginal: 'Read the original article',
      newTab: ' (opens in a new tab)',
      quoteHeading: 'The quoted passage',
      kicker: (n) => `Source [${n}]`,
      loadingArticle: 'Loading the article…',
      articleError: (msg) => `Couldn\u2019t load the paragraph (${msg}); showing the quoted sentence only.`,
      quoteMismatch: 'The article has changed since; showing the quoted sentence only.',
      restoreError: 'Couldn\u2019t restore the previous conversation.',
      incomplete: '(incomplete answer)',
    },
  };

  const EXAMPLES = {
    zh: [
      '金什合作产业园入驻了几家企业？',
      '金什合作产业园由哪两地共建？',
      '金牛区城投集团与什邡市恒新公司按什么股比合作？',
      '成都都市圈有多少家企业实现了跨市域产业协作？',
    ],
    en: [
      'Who co-built the Jinshi cooperative industrial park?',
      'What will the drone base\u2019s revenue be?',
      'How many companies have moved into the Jinshi park?',
    ],
  };

  const LANG_KEY = 'tongcheng_qa.lang';
  const SESSION_KEY = 'tongcheng_qa.session';
  const MARKER = /\[(\d{1,3})\]/g;
  const CJK = /[\u3400-\u9fff\uf900-\ufaff]/;
  const PHONE = window.matchMedia('(max-width: 640px)');

  // ---------------------------------------------------------------------------------------------
  // State and elements

  const $ = (id) => document.getElementById(id);
  const els = {
    thread: $('thread'), empty: $('empty'), examples: $('examples'), form: $('ask-form'),
    question: $('question'), send: $('send'), newChat: $('new-chat'), panel: $('panel'),
    backdrop: $('backdrop'), panelClose: $('panel-close'), panelTitle: $('panel-title'),
    panelKicker: $('panel-kicker'), panelSource: $('panel-source'), panelDate: $('panel-date'),
    panelLink: $('panel-link'), panelQuote: $('panel-quote'), panelStatus: $('panel-status'),
  };

  const state = {
    lang: initialLang(),
    sessionId: null,
    busy: false,
    controller: null,   // AbortController of the question in flight
    panelReturn: null,  // element that gets focus back when the panel closes
    panelToken: 0,      // ignore article fetches for a panel that was since re-targeted
    articles: new Map(), // article_id -> Promise<article JSON>
  };

  function initialLang() {
    let saved = null;
    try { saved = localStorage.getItem(LANG_KEY); } catch (_) { /* storage blocked */ }
    if (saved === 'zh' || saved === 'en') return saved;
    const nav = (navigator.languages && navigator.languages[0]) || navigator.language || '';
    return nav.toLowerCase().startsWith('zh') ? 'zh' : 'en';
  }

  const uiLang = () => (state.lang === 'zh' ? 'zh-CN' : 'en');

  const t = (key, ...args) => {
    const v = STRINGS[state.lang][key] ?? STRINGS.en[key] ?? key;
    return typeof v === 'function' ? v(...args) : v;
  };

  /** A new element; `text` is set with textContent (never parsed as markup). */
  function h(tag, attrs = {}, text) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    if (text !== undefined && text !== null) el.textContent = String(text);
    return el;
  }

  /** An element whose text is a UI string that follows the language toggle. */
  function i18n(tag, key, attrs = {}) {
    const el = h(tag, { lang: uiLang(), ...attrs }, t(key));
    el.dataset.i18n = key;
    return el;
  }

  // ---------------------------------------------------------------------------------------------
  // Language

  function applyLang() {
    const lang = state.lang;
    document.documentElement.lang = uiLang();
    document.title = t('docTitle');
    for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll('.msg [data-i18n], .msg [data-ui-lang], .notice')) el.lang = uiLang();
    for (const el of document.querySelectorAll('[data-i18n-placeholder]')) {
      el.placeholder = t(el.dataset.i18nPlaceholder);
    }
    for (const el of document.querySelectorAll('[data-i18n-aria-label]')) {
      el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
    }
    for (const btn of document.querySelectorAll('.lang-btn')) {
      btn.setAttribute('aria-pressed', String(btn.dataset.lang === lang));
    }
    for (const chip of document.querySelectorAll('.chip[data-n]')) {
      chip.setAttribute('aria-label', t('sourceChip', chip.dataset.n, chip.dataset.title || ''));
    }
    for (const item of document.querySelectorAll('.source-item[data-n]')) {
      item.setAttribute('aria-label', t('sourceItem', item.dataset.n, item.dataset.title || ''));
    }
    if (!els.panel.hidden && els.panel.dataset.n) els.panelKicker.textContent = t('kicker', els.panel.dataset.n);
    els.send.querySelector('.send-label').textContent = state.busy ? t('sending') : t('send');
    renderExamples();
  }

  function setLang(lang) {
    if (lang !== 'zh' && lang !== 'en') return;
    state.lang = lang;
    try { localStorage.setItem(LANG_KEY, lang); } catch (_) { /* storage blocked */ }
    applyLang();
  }

  function renderExamples() {
    els.examples.replaceChildren(...EXAMPLES[state.lang].map((q) => {
      const li = h('li');
      const btn = h('button', { type: 'button', class: 'example' }, q);
      btn.addEventListener('click', () => ask(q));
      li.append(btn);
      return li;
    }));
  }

  // ---------------------------------------------------------------------------------------------
  // Thread rendering

  function updateEmpty() {
    els.empty.hidden = els.thread.childElementCount > 0;
  }

  function scrollToEnd(force = false) {
    const se = document.scrollingElement || document.documentElement;
    const nearBottom = se.scrollHeight - se.scrollTop - se.clientHeight < 160;
    if (force || nearBottom) window.scrollTo({ top: se.scrollHeight });
  }

  function addUserMessage(text) {
    const msg = h('div', { class: 'msg msg-user' });
    msg.append(i18n('span', 'you', { class: 'sr-only' }));
    msg.append(h('p', { class: 'bubble' }, text));
    els.thread.append(msg);
    updateEmpty();
    return msg;
  }

  function addBotMessage() {
    const msg = h('article', { class: 'msg msg-bot', 'aria-busy': 'true', dataset: { state: 'streaming', tokens: '0' } });
    msg.append(i18n('h3', 'assistant', { class: 'sr-only' }));
    const card = h('div', { class: 'card' });
    const answer = h('div', { class: 'answer', dataset: { role: 'answer' } });
    const typing = h('p', { class: 'typing' });
    typing.append(h('span', { class: 'dots', 'aria-hidden': 'true' }), i18n('span', 'thinking'));
    answer.append(typing);
    card.append(answer);
    msg.append(card);
    els.thread.append(msg);
    updateEmpty();
    return msg;
  }

  /** Answer text as text nodes and citation chips ([n] markers with a citation become buttons). */
  function renderAnswerText(container, text, citations, msg) {
    const byN = new Map((citations || []).map((c) => [c.n, c]));
    const frag = document.createDocumentFragment();
    let last = 0;
    for (const m of text.matchAll(MARKER)) {
      if (m.index > last) frag.append(document.createTextNode(text.slice(last, m.index)));
      const n = Number(m[1]);
      const cit = byN.get(n);
      if (cit) {
        frag.append(makeChip(cit, msg));
      } else if (citations === null) {
        frag.append(h('span', { class: 'chip chip-pending', 'aria-hidden': 'true' }, String(n)));
      } else {
        frag.append(document.createTextNode(m[0]));
      }
      last = m.index + m[0].length;
    }
    if (last < text.length) frag.append(document.createTextNode(text.slice(last)));
    container.replaceChildren(frag);
  }

  function makeChip(cit, msg) {
    const chip = h('button', {
      type: 'button', class: 'chip',
      'aria-label': t('sourceChip', cit.n, cit.title),
      'aria-haspopup': 'dialog',
      dataset: { n: String(cit.n), title: cit.title || '' },
    }, String(cit.n));
    chip.addEventListener('click', () => openPanel(cit, chip, msg));
    return chip;
  }

  function formatMeta(parts) {
    return parts.filter((p) => p !== null && p !== undefined && String(p).trim() !== '').join(' · ');
  }

  function renderFinal(msg, answer) {
    msg.dataset.state = answer.refused ? 'refused' : 'answered';
    msg.dataset.language = answer.language || '';
    msg.setAttribute('lang', answer.language === 'en' ? 'en' : 'zh-CN');
    msg.classList.toggle('msg-refused', Boolean(answer.refused));
    msg._answer = answer;
    const card = msg.querySelector('.card');
    card.replaceChildren();

    if (answer.refused) {
      const badge = h('p', { class: 'refused-badge' });
      badge.append(h('span', { class: 'refused-icon', 'aria-hidden': 'true' }, '?'), i18n('span', 'refusedLabel'));
      card.append(badge);
    }

    const text = h('div', { class: 'answer', dataset: { role: 'answer' } });
    renderAnswerText(text, answer.answer || '', answer.citations || [], msg);
    card.append(text);

    if (answer.refused) {
      card.append(i18n('p', 'refusedHelp', { class: 'refused-help' }));
      const nearest = h('div', { class: 'nearest', hidden: true });
      card.append(nearest);
      renderNearest(nearest, answer);
    }

    const cits = answer.citations || [];
    if (cits.length) {
      const box = h('div', { class: 'sources' });
      box.append(i18n('h4', 'sources', { class: 'sources-title' }));
      const list = h('ol', { class: 'source-list' });
      for (const c of cits) {
        const li = h('li');
        const btn = h('button', {
          type: 'button', class: 'source-item', 'aria-haspopup': 'dialog',
          'aria-label': t('sourceItem', c.n, c.title),
          dataset: { n: String(c.n), title: c.title || '' },
        });
        btn.append(h('span', { class: 'source-n', 'aria-hidden': 'true' }, String(c.n)));
        const body = h('span', { class: 'source-body' });
        body.append(h('span', { class: 'source-quote', lang: CJK.test(c.quote) ? 'zh-CN' : null }, `“${c.quote}”`));
        const title = c.title || c.article_id;
        body.append(h('span', { class: 'source-meta' }, formatMeta([c.source, c.date, CJK.test(title) ? `《${title}》` : title])));
        btn.append(body);
        btn.addEventListener('click', () => openPanel(c, btn, msg));
        li.append(btn);
        list.append(li);
      }
      box.append(list);
      card.append(box);
    }

    const actions = h('div', { class: 'actions' });
    const copyBtn = h('button', { type: 'button', class: 'btn btn-small copy-btn' });
    copyBtn.append(h('span', { class: 'copy-icon', 'aria-hidden': 'true' }), i18n('span', 'copy', { class: 'copy-label' }));
    const copyStatus = h('span', { class: 'copy-status', role: 'status' });
    copyBtn.addEventListener('click', () => copyAnswer(msg, copyBtn, copyStatus));
    actions.append(copyBtn, copyStatus);
    card.append(actions);

    msg.setAttribute('aria-busy', 'false');
  }

  /** For a refusal: the retrieved articles whose title the answer text names, with their links. */
  async function renderNearest(box, answer) {
    const ids = [...new Set((answer.retrieved || []).map((r) => r.article_id))].slice(0, 5);
    const found = [];
    for (const id of ids) {
      try {
        const a = await fetchArticle(id);
        if (a.title && (answer.answer || '').includes(a.title)) found.push(a);
      } catch (_) { /* the answer text still names it */ }
    }
    if (!found.length) return;
    box.append(i18n('h4', 'nearest', { class: 'sources-title' }));
    const list = h('ul', { class: 'nearest-list' });
    for (const a of found) {
      const li = h('li');
      if (a.url && /^https?:\/\//i.test(a.url)) {
        const link = h('a', { href: a.url, target: '_blank', rel: 'noopener noreferrer' }, a.title);
        link.append(i18n('span', 'newTab', { class: 'sr-only' }));
        li.append(link);
      } else {
        li.append(h('span', { class: 'source-title' }, a.title));
      }
      const meta = formatMeta([a.source, a.date]);
      if (meta) li.append(h('span', { class: 'source-meta' }, meta));
      list.append(li);
    }
    box.append(list);
    box.hidden = false;
  }

  function renderError(msg, message, question, partial) {
    msg.dataset.state = 'error';
    msg.classList.add('msg-error');
    msg.setAttribute('aria-busy', 'false');
    const card = msg.querySelector('.card');
    card.replaceChildren();
    if (partial) {
      const p = h('div', { class: 'answer answer-partial', dataset: { role: 'answer' } });
      renderAnswerText(p, partial, null, msg);
      p.append(' ', i18n('span', 'incomplete', { class: 'incomplete' }));
      card.append(p);
    }
    const box = h('div', { class: 'error-box', role: 'alert' });
    const title = h('p', { class: 'error-title' });
    title.append(h('span', { class: 'error-icon', 'aria-hidden': 'true' }, '!'), i18n('span', 'errorTitle'));
    box.append(title, h('p', { class: 'error-message' }, message));
    if (question) {
      const retry = i18n('button', 'retry', { type: 'button', class: 'btn btn-small retry-btn' });
      retry.addEventListener('click', () => { msg.previousElementSibling?.remove(); msg.remove(); updateEmpty(); ask(question); });
      box.append(retry);
    }
    card.append(box);
  }

  function addNotice(key) {
    const p = i18n('p', key, { class: 'notice' });
    els.thread.append(p);
  }

  // ---------------------------------------------------------------------------------------------
  // Server calls

  class HttpError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function errorFrom(res) {
    let message = '';
    try {
      const data = await res.json();
      message = typeof data?.error === 'string' ? data.error : '';
    } catch (_) { /* not JSON */ }
    return new HttpError(res.status, message ? `${message} (HTTP ${res.status})` : t('httpError', res.status));
  }

  async function getJSON(url, options = {}) {
    const res = await fetch(url, { headers: { Accept: 'application/json' }, ...options });
    if (!res.ok) throw await errorFrom(res);
    return res.json();
  }

  function articleUrl(id) {
    return '/v1/articles/' + String(id).split('/').map(encodeURIComponent).join('/');
  }

  function fetchArticle(id) {
    if (!state.articles.has(id)) {
      const p = getJSON(articleUrl(id));
      p.catch(() => state.articles.delete(id));
      state.articles.set(id, p);
    }
    return state.articles.get(id);
  }

  function setSession(id) {
    state.sessionId = id;
    if (id) els.thread.dataset.sessionId = id;
    else delete els.thread.dataset.sessionId;
    try {
      if (id) sessionStorage.setItem(SESSION_KEY, id);
      else sessionStorage.removeItem(SESSION_KEY);
    } catch (_) { /* storage blocked */ }
  }

  async function ensureSession(signal) {
    if (state.sessionId) return state.sessionId;
    const data = await getJSON('/v1/sessions', { method: 'POST', signal });
    setSession(data.session_id);
    return data.session_id;
  }

  /** Parse a text/event-stream body; calls onEvent(name, data) for each event. */
  async function readSSE(body, onEvent) {
    const reader = body.getReader();
    const decoder = new TextDecoder('utf-8');
    let buffer = '';
    const flush = (block) => {
      let name = 'message';
      const data = [];
      for (const line of block.split(/\r\n|\r|\n/)) {
        if (!line || line.startsWith(':')) continue;
        const i = line.indexOf(':');
        const field = i < 0 ? line : line.slice(0, i);
        let value = i < 0 ? '' : line.slice(i + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') name = value;
        else if (field === 'data') data.push(value);
      }
      if (data.length) onEvent(name, data.join('\n'));
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      const parts = buffer.split(/\r\n\r\n|\n\n|\r\r/);
      buffer = parts.pop();
      for (const part of parts) flush(part);
    }
    buffer += decoder.decode();
    if (buffer.trim()) flush(buffer);
  }

  function setBusy(busy) {
    state.busy = busy;
    els.send.disabled = busy;
    els.send.setAttribute('aria-busy', String(busy));
    els.send.querySelector('.send-label').textContent = busy ? t('sending') : t('send');
  }

  async function ask(raw) {
    const question = (raw ?? els.question.value).trim();
    if (!question) { els.question.focus(); return; }
    if (state.busy) return;
    if (raw === undefined || raw === els.question.value) { els.question.value = ''; autoGrow(); }
    setBusy(true);
    addUserMessage(question);
    const msg = addBotMessage();
    scrollToEnd(true);
    const controller = new AbortController();
    state.controller = controller;
    let streamed = '';
    let final = null;
    let streamError = null;
    try {
      const sessionId = await ensureSession(controller.signal);
      const res = await fetch('/v1/ask/stream', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
        body: JSON.stringify({ question, session_id: sessionId }),
        signal: controller.signal,
      });
      if (!res.ok) {
        const err = await errorFrom(res);
        if (res.status === 404 && state.sessionId === sessionId) { setSession(null); err.sessionGone = true; }
        throw err;
      }
      const answerEl = msg.querySelector('[data-role="answer"]');
      await readSSE(res.body, (name, data) => {
        let payload = {};
        try { payload = JSON.parse(data); } catch (_) { payload = {}; }
        if (name === 'token' && typeof payload.text === 'string') {
          streamed += payload.text;
          msg.dataset.tokens = String(Number(msg.dataset.tokens) + 1);
          renderAnswerText(answerEl, streamed, null, msg);
          answerEl.classList.add('answer-streaming');
          scrollToEnd();
        } else if (name === 'final') {
          final = payload;
        } else if (name === 'error') {
          streamError = typeof payload.error === 'string' && payload.error ? payload.error : t('streamCut');
        }
      });
      if (streamError) throw new Error(streamError);
      if (!final || typeof final.answer !== 'string') throw new Error(t('streamCut'));
      if (final.session_id && final.session_id !== state.sessionId) setSession(final.session_id);
      renderFinal(msg, final);
    } catch (err) {
      if (controller.signal.aborted) { msg.remove(); return; }
      let message = err instanceof HttpError || streamError ? err.message : '';
      if (!message) message = err instanceof TypeError ? t('networkError') : (err?.message || t('streamCut'));
      renderError(msg, message, question, final ? '' : streamed);
      if (err?.sessionGone) addNotice('sessionGone');
    } finally {
      if (state.controller === controller) {
        state.controller = null;
        setBusy(false);
      }
      scrollToEnd();
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Citation panel

  /** [start, end) in code points -> the same range in UTF-16 code units of `body`. */
  function toUnits(body, start, end) {
    if (!/[\uD800-\uDBFF]/.test(body)) return [start, end];
    const cps = Array.from(body);
    const s = cps.slice(0, start).join('').length;
    const e = s + cps.slice(start, end).join('').length;
    return [s, e];
  }

  function paragraphAround(body, s, e) {
    const before = s > 0 ? body.lastIndexOf('\n', s - 1) : -1;
    const pStart = before < 0 ? 0 : before + 1;
    let pEnd = body.indexOf('\n', e);
    if (pEnd < 0) pEnd = body.length;
    return [pStart, Math.max(pEnd, e)];
  }

  function showQuoteOnly(cit) {
    els.panelQuote.replaceChildren(h('mark', {}, cit.quote));
  }

  async function openPanel(cit, trigger, msg) {
    state.panelReturn = trigger;
    const token = ++state.panelToken;
    els.panel.dataset.n = String(cit.n);
    els.panel.dataset.articleId = cit.article_id;
    els.panelKicker.textContent = t('kicker', cit.n);
    els.panelTitle.textContent = cit.title || cit.article_id;
    const answerLang = msg?.dataset.language;
    els.panelTitle.setAttribute('lang', CJK.test(cit.title || '') ? 'zh-CN' : (answerLang === 'en' ? 'en' : 'zh-CN'));
    els.panelSource.textContent = cit.source || t('unknown');
    els.panelDate.textContent = cit.date || t('unknown');
    if (cit.url && /^https?:\/\//i.test(cit.url)) {
      els.panelLink.href = cit.url;
      els.panelLink.hidden = false;
    } else {
      els.panelLink.removeAttribute('href');
      els.panelLink.hidden = true;
    }
    showQuoteOnly(cit);
    els.panelStatus.textContent = t('loadingArticle');
    els.panel.classList.add('is-loading');

    const modal = PHONE.matches;
    els.panel.setAttribute('aria-modal', String(modal));
    els.backdrop.hidden = !modal;
    els.panel.hidden = false;
    document.body.classList.add('panel-open');
    for (const el of document.querySelectorAll('.chip.is-active, .source-item.is-active')) el.classList.remove('is-active');
    trigger?.classList.add('is-active');
    els.panelClose.focus();

    try {
      const article = await fetchArticle(cit.article_id);
      if (token !== state.panelToken) return;
      const body = typeof article.body === 'string' ? article.body : '';
      const [s, e] = toUnits(body, cit.start, cit.end);
      if (body.slice(s, e) !== cit.quote) {
        els.panelStatus.textContent = t('quoteMismatch');
      } else {
        const [ps, pe] = paragraphAround(body, s, e);
        els.panelQuote.replaceChildren(
          document.createTextNode(body.slice(ps, s)),
          h('mark', {}, body.slice(s, e)),
          document.createTextNode(body.slice(e, pe)),
        );
        els.panelStatus.textContent = '';
      }
      if (article.source && !cit.source) els.panelSource.textContent = article.source;
    } catch (err) {
      if (token !== state.panelToken) return;
      els.panelStatus.textContent = t('articleError', err?.message || t('networkError'));
    } finally {
      if (token === state.panelToken) els.panel.classList.remove('is-loading');
    }
  }

  function closePanel() {
    if (els.panel.hidden) return;
    state.panelToken++;
    els.panel.hidden = true;
    els.backdrop.hidden = true;
    document.body.classList.remove('panel-open');
    for (const el of document.querySelectorAll('.chip.is-active, .source-item.is-active')) el.classList.remove('is-active');
    const back = state.panelReturn;
    state.panelReturn = null;
    if (back && back.isConnected) back.focus();
    else els.question.focus();
  }

  function trapFocus(ev) {
    if (ev.key !== 'Tab' || els.panel.getAttribute('aria-modal') !== 'true') return;
    const items = [...els.panel.querySelectorAll('button, a[href]')].filter((el) => !el.hidden && el.offsetParent !== null);
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    if (ev.shiftKey && document.activeElement === first) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && document.activeElement === last) { ev.preventDefault(); first.focus(); }
  }

  // ---------------------------------------------------------------------------------------------
  // Copy with citations

  function plainText(answer) {
    const en = answer.language === 'en';
    const lines = [(answer.answer || '').trim()];
    const cits = answer.citations || [];
    if (cits.length) {
      lines.push('', en ? 'Sources:' : '来源:');
      for (const c of cits) {
        const where = [c.source, c.date].filter(Boolean).join(', ');
        const head = [`[${c.n}] ${c.title || c.article_id}`, where, c.url].filter(Boolean).join(' — ');
        lines.push(head);
        lines.push(en ? `    "${c.quote}"` : `    “${c.quote}”`);
      }
    }
    return lines.join('\n');
  }

  function legacyCopy(text) {
    const ta = h('textarea', { readonly: true, class: 'clipboard-helper', 'aria-hidden': 'true', tabindex: '-1' });
    ta.value = text;
    document.body.append(ta);
    ta.select();
    let ok = false;
    try { ok = document.execCommand('copy'); } catch (_) { ok = false; }
    ta.remove();
    if (!ok) throw new Error('copy failed');
  }

  async function copyAnswer(msg, btn, status) {
    const text = plainText(msg._answer || { answer: '' });
    try {
      if (navigator.clipboard && window.isSecureContext) await navigator.clipboard.writeText(text);
      else legacyCopy(text);
      btn.classList.add('is-done');
      btn.querySelector('.copy-label').dataset.i18n = 'copied';
      btn.querySelector('.copy-label').textContent = t('copied');
      status.textContent = t('copiedStatus');
      msg.dataset.copied = 'true';
    } catch (_) {
      status.textContent = t('copyFailed');
      status.classList.add('copy-failed');
      return;
    }
    clearTimeout(btn._timer);
    btn._timer = setTimeout(() => {
      btn.classList.remove('is-done');
      const label = btn.querySelector('.copy-label');
      label.dataset.i18n = 'copy';
      label.textContent = t('copy');
      status.textContent = '';
    }, 2500);
  }

  // ---------------------------------------------------------------------------------------------
  // Conversation lifecycle

  function newConversation() {
    if (state.controller) state.controller.abort();
    state.controller = null;
    setBusy(false);
    closePanel();
    els.thread.replaceChildren();
    setSession(null);
    updateEmpty();
    els.question.value = '';
    autoGrow();
    els.question.focus();
  }

  async function restoreSession() {
    let id = null;
    try { id = sessionStorage.getItem(SESSION_KEY); } catch (_) { id = null; }
    if (!id) return;
    try {
      const session = await getJSON('/v1/sessions/' + encodeURIComponent(id));
      if (state.sessionId || els.thread.childElementCount) return; // the user already started
      setSession(session.session_id);
      for (const turn of session.turns || []) {
        if (turn.role === 'user') addUserMessage(turn.content);
        else if (turn.answer) renderFinal(addBotMessage(), turn.answer);
      }
      scrollToEnd(true);
    } catch (err) {
      if (!state.sessionId) setSession(null);
      if (!(err instanceof HttpError && err.status === 404)) addNotice('restoreError');
      updateEmpty();
    }
  }

  function autoGrow() {
    const ta = els.question;
    if (!ta.value) { ta.style.height = ''; return; }
    ta.style.height = 'auto';
    ta.style.height = `${Math.min(ta.scrollHeight + 2, 200)}px`;
  }

  // ---------------------------------------------------------------------------------------------
  // Wiring

  els.form.addEventListener('submit', (ev) => { ev.preventDefault(); ask(); });
  els.question.addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing && ev.keyCode !== 229) {
      ev.preventDefault();
      ask();
    }
  });
  els.question.addEventListener('input', autoGrow);
  els.newChat.addEventListener('click', newConversation);
  for (const btn of document.querySelectorAll('.lang-btn')) {
    btn.addEventListener('click', () => setLang(btn.dataset.lang));
  }
  els.panelClose.addEventListener('click', closePanel);
  els.backdrop.addEventListener('click', closePanel);
  els.panel.addEventListener('keydown', trapFocus);
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && !els.panel.hidden) { ev.preventDefault(); closePanel(); }
  });
  PHONE.addEventListener?.('change', () => {
    if (els.panel.hidden) return;
    els.panel.setAttribute('aria-modal', String(PHONE.matches));
    els.backdrop.hidden = !PHONE.matches;
  });

  applyLang();
  updateEmpty();
  restoreSession();
  document.body.dataset.ready = 'true';
})();
