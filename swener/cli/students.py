"""`swener train`, `swener sweep`, `swener recipe`, `swener evaluate`: the students."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from swener import config  # standard library only: the defaults
from swener.cli.base import (
    alpha_option,
    at_least,
    corpus_option,
    encoder_options_option,
    main,
    positive,
    seeds_option,
    temperature_option,
)
from swener.cli.gold import gold_option
from swener.errors import SwenerError
from swener.runs import PROFILES


def inputs_options(command: Any) -> Any:
    """The student's inputs besides the fastText vector (StudentSettings fields of the same names)."""
    options = [
        click.option("--chars/--no-chars", default=False, show_default=True,
                     help="Per-word character CNN features (Ma & Hovy 2016) beside the fastText vector."),
        click.option("--char-dim", type=int, callback=at_least(1), default=config.CHAR_DIM, show_default=True,
                     help="Character embedding size (with --chars)."),
        click.option("--char-filters", type=int, callback=at_least(1), default=config.CHAR_FILTERS,
                     show_default=True, help="Character CNN filters: a word's character features (with --chars)."),
        click.option("--subwords", default=None, metavar="BACKBONE",
                     help="The teacher's subword table as an input beside the fastText vector: a backbone folder "
                          "(tokenizer.json + model.safetensors) or e5-small-sv / e5-small."),
        click.option("--subword-dim", type=int, callback=at_least(1), default=config.SUBWORD_DIM,
                     help="Reduce the piece vectors to this many dimensions by PCA (default: the backbone's width)."),
        click.option("--subword-pooling", type=click.Choice(list(config.SUBWORD_POOLINGS)),
                     default=config.SUBWORD_POOLINGS[0], show_default=True,
                     help="A word's subword vector: the mean of its pieces' vectors, or its first piece's."),
        click.option("--subword-trainable/--subword-frozen", default=False, show_default=True,
                     help="Train the subword piece table with the student (else frozen)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command("train")
@click.option("--family", type=click.Choice(list(config.FAMILIES)), required=True)
@corpus_option
@click.option("--embeddings", "embeddings_path", type=click.Path(path_type=Path), required=True,
              help="fastText vectors (an embeddings folder, vectors.npz, .bin or .vec).")
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), default=None,
              help="Folder of the teacher's cached distributions (train.npz); needed when alpha > 0.")
@click.option("--recipe", "recipe_file", type=click.Path(path_type=Path), default=None,
              help="A recipe file (recipes/default.json): the family's alpha, T, KD target and transfer set; "
                   "options given here override it.")
@click.option("--alpha", "alpha", callback=alpha_option, default=None,
              help=f"Share of the KD term: a number in [0, 1] (0: plain training) or START:END, annealed linearly "
                   f"over the epochs (e.g. 0.9:0.1).  [default: {config.DEFAULT_ALPHA:g}]")
@click.option("--temperature", type=float, callback=temperature_option, default=None,
              help=f"T of the KD term.  [default: {config.DEFAULT_TEMPERATURE:g}]")
@click.option("--kd-target", type=click.Choice(list(config.KD_TARGETS)), default=None,
              help="Under a CRF: match the teacher with the CRF marginals, the softmax of the emissions, or "
                   f"learn the teacher's k best paths (kbest, CRF students).  [default: {config.DEFAULT_KD_TARGET}]")
@click.option("--hidden-size", type=int, callback=at_least(1), default=config.STUDENT_HIDDEN, show_default=True)
@click.option("--epochs", type=int, callback=at_least(1), default=config.STUDENT_EPOCHS, show_default=True)
@click.option("--lr", type=float, callback=positive, default=config.STUDENT_LR, show_default=True)
@click.option("--batch-size", type=int, callback=at_least(1), default=config.STUDENT_BATCH, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--max-sentences", type=int, callback=at_least(1), default=None)
@click.option("--threads", type=int, callback=at_least(1), default=config.THREADS, show_default=True,
              help="Torch threads (1 when other jobs share the cores).")
@click.option("--oov", type=click.Choice(list(config.OOV_MODES)), default=config.OOV_MODES[0], show_default=True,
              help="Vectors for words outside the vocabulary: mean of their n-gram vectors, or zeros.")
@click.option("--transfer", "transfer_text", type=click.Path(path_type=Path), default=None,
              help="Unlabelled text also learnt from the teacher (hard weight 0); its cache must be in --soft-labels "
                   "(`swener teacher soft-labels --text FILE`).")
@click.option("--transfer-sentences", type=int, callback=at_least(1), default=None,
              help="Use the transfer text's first N sentences.")
@click.option("--transfer-ratio", type=float, callback=positive, default=config.TRANSFER_RATIO, show_default=True,
              help="Transfer sentences per train sentence in each epoch, in turn from the whole set (0 < R; the "
                   "gold passes stay --epochs).")
@click.option("--gradient-probes", type=int, callback=at_least(0), default=config.GRADIENT_PROBES, show_default=True,
              help="Batches per epoch whose hard and KD gradient norms go into training.json (0: none).")
@click.option("--encoder-option", "encoder_options", multiple=True, callback=encoder_options_option,
              help="KEY=VALUE (repeatable): an option of the family's encoder, VALUE as JSON "
                   "(e.g. residual=true for the ID-CNN, layers=3 for the CNN).")
@click.option("--profile", type=click.Choice(list(PROFILES)), default=None,
              help="The Makefile profile that runs this (quick or full), recorded in results.json for `swener models`.")
@gold_option
@click.option("--updates", type=int, callback=at_least(1), default=None,
              help="A budget of optimizer updates instead of --epochs (epochs = updates / batches per epoch).")
@inputs_options
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the model and results.json.")
def train_cmd(family: str, corpus_name: str, embeddings_path: Path, soft_dir: Path | None, recipe_file: Path | None,
              alpha: tuple[float, float | None] | None, temperature: float | None, kd_target: str | None,
              hidden_size: int, epochs: int,
              lr: float, batch_size: int, seed: int, max_sentences: int | None, threads: int, oov: str,
              transfer_text: Path | None, transfer_sentences: int | None, transfer_ratio: float, gradient_probes: int,
              encoder_options: dict | None, profile: str | None, gold: int | None, updates: int | None,
              out: Path, **inputs: Any) -> None:
    """Train one student (plain with --alpha 0, else with KD), score it and measure its cost."""
    from swener.students.run import settings_for, train_student

    base = config.load(recipe_file, family) if recipe_file else config.Recipe()
    settings = settings_for(family, base, alpha=alpha, temperature=temperature, kd_target=kd_target,
                            transfer_text=transfer_text, transfer_sentences=transfer_sentences,
                            transfer_ratio=transfer_ratio, hidden_size=hidden_size, epochs=epochs, learning_rate=lr,
                            batch_size=batch_size, seed=seed,
                            max_sentences=max_sentences, threads=threads, oov=oov, gradient_probes=gradient_probes,
                            encoder_options=encoder_options, gold=gold, updates=updates, **inputs)
    results = train_student(settings, corpus_name, embeddings_path, soft_dir, out, profile=profile)
    for name, row in results["scores"].items():
        click.echo(f"{name}: micro F1 {row['micro_f1']:.4f}")
    click.echo(f"{results['cost']['tokens_per_second']:.0f} tokens/s; wrote {out}")


@main.command("sweep")
@click.option("--family", type=click.Choice(list(config.FAMILIES)), required=True)
@corpus_option
@click.option("--embeddings", "embeddings_path", type=click.Path(path_type=Path), required=True)
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), required=True)
@click.option("--recipe", "recipe_file", type=click.Path(path_type=Path), default=config.DEFAULT_RECIPE,
              show_default=True, help="The base settings (the family's line); --vary changes one factor at a time.")
@click.option("--alpha", "alpha", callback=alpha_option, default=None,
              help="Base alpha instead of the recipe's (a number or START:END).")
@click.option("--temperature", type=float, callback=temperature_option, default=None,
              help="Base T instead of the recipe's.")
@click.option("--kd-target", type=click.Choice(list(config.KD_TARGETS)), default=None)
@click.option("--transfer", "transfer_text", default=None, help="Base transfer text instead of the recipe's.")
@click.option("--transfer-sentences", type=int, callback=at_least(1), default=None)
@click.option("--vary", "factors", multiple=True,
              help="NAME=V1,V2,...: one factor's values (alpha, alpha_end, temperature, kd_target, transfer_text, "
                   "transfer_sentences, epochs, updates; `none` for no value). Repeat for several factors.")
@click.option("--seeds", default="1", show_default=True, callback=seeds_option, help="Comma-separated seeds.")
@click.option("--epochs", type=int, callback=at_least(1), default=config.STUDENT_EPOCHS, show_default=True)
@click.option("--updates", type=int, callback=at_least(1), default=None,
              help="A budget of optimizer updates instead of epochs (e.g. for large transfer sets).")
@click.option("--plain/--no-plain", default=True, show_default=True, help="Also run plain training per seed.")
@click.option("--max-sentences", type=int, callback=at_least(1), default=None)
@click.option("--threads", type=int, callback=at_least(1), default=config.THREADS, show_default=True)
@click.option("--root", type=click.Path(path_type=Path), default=Path("models/sweeps"), show_default=True,
              help="Folder of the trial runs: ROOT/FAMILY/TRIAL.")
@click.option("--table", type=click.Path(path_type=Path), required=True,
              help="The sweep table (JSON, with a Markdown twin); trials already in it are kept.")
def sweep_cmd(family: str, corpus_name: str, embeddings_path: Path, soft_dir: Path, recipe_file: Path,
              alpha: tuple[float, float | None] | None, temperature: float | None, kd_target: str | None,
              transfer_text: str | None,
              transfer_sentences: int | None, factors: tuple[str, ...], seeds: list[int], epochs: int,
              updates: int | None,
              plain: bool, max_sentences: int | None, threads: int, root: Path, table: Path) -> None:
    """Screen KD settings on dev, one factor at a time around a base recipe (never reads test)."""
    from swener.students import sweep

    trial = sweep.base_trial(family, config.load(recipe_file, family), alpha=alpha, temperature=temperature,
                             kd_target=kd_target, transfer_text=transfer_text, transfer_sentences=transfer_sentences,
                             seed=seeds[0], epochs=epochs, updates=updates)
    trials = sweep.one_factor_trials(trial, [sweep.parse_factor(f) for f in factors], seeds, plain)
    click.echo(f"{len(trials)} trials: {', '.join(t.name for t in trials)}", err=True)
    for row in sweep.run_sweep(trials, corpus_name, embeddings_path, soft_dir, root, table, threads, max_sentences):
        click.echo(f"{row['name']}: dev F1 {row['dev_f1']:.4f}")


@main.command("recipe")
@click.argument("recipe_file", type=click.Path(path_type=Path), default=config.DEFAULT_RECIPE)
@click.option("--family", type=click.Choice(list(config.FAMILIES)), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of Make variables.")
def recipe_cmd(recipe_file: Path, family: str, as_json: bool) -> None:
    """A family's KD settings in a recipe file, as Make variables (ALPHA, TEMPERATURE, KD_TARGET, TRANSFER_*)."""
    found = config.load(recipe_file, family)
    click.echo(json.dumps(config.as_dict(found)) if as_json else found.make_variables(), nl=as_json)


@main.command("evaluate")
@click.argument("model")
@corpus_option
@click.option("--split", default="test", show_default=True)
@click.option("--max-sentences", type=int, callback=at_least(1), default=None)
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
