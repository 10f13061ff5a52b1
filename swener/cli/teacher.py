"""`swener teacher ...`: fine-tune the transformer teacher, write its soft labels and k best paths, score it."""
from __future__ import annotations

from pathlib import Path

import click

from swener import config  # standard library only: the defaults
from swener.cli.base import (
    Group,
    _existing_file,
    at_least,
    corpus_option,
    main,
    positive,
    teacher_option,
)
from swener.cli.gold import gold_option
from swener.errors import SwenerError


@main.group(cls=Group)
def teacher() -> None:
    """Fine-tune the transformer teacher and write its soft labels."""


@teacher.command("train")
@corpus_option
@click.option("--backbone", default=config.BACKBONE, show_default=True,
              help="e5-small-sv (trimmed), e5-small, a local folder or a HF id.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for the trained teacher.")
@click.option("--epochs", type=int, callback=at_least(1), default=config.TEACHER_EPOCHS, show_default=True,
              help="At most this many epochs; the best on dev is kept.")
@click.option("--patience", type=int, callback=at_least(1), default=config.TEACHER_PATIENCE, show_default=True,
              help="Stop when dev F1 has not improved for this many epochs.")
@click.option("--lr", type=float, callback=positive, default=config.TEACHER_LR, show_default=True)
@click.option("--batch-size", type=int, callback=at_least(1), default=config.TEACHER_BATCH, show_default=True)
@click.option("--crf/--no-crf", default=config.TEACHER_CRF, show_default=True, help="A CRF head (default: softmax).")
@click.option("--decoding", type=click.Choice(list(config.TEACHER_DECODINGS)), default=config.TEACHER_DECODING,
              show_default=True,
              help="Softmax head: constrained BIOES Viterbi and chain marginals, or Flair's per-token argmax.")
@click.option("--max-sentences", type=int, callback=at_least(1), default=None,
              help="Use only the first N sentences of each split.")
@click.option("--seed", type=int, default=config.TEACHER_SEED, show_default=True)
@click.option("--freeze-word-embeddings/--train-word-embeddings", default=config.TEACHER_FREEZE,
              show_default=True, help="Keep the backbone's vocabulary table fixed.")
@click.option("--length-buckets/--random-batches", default=config.TEACHER_BUCKETS, show_default=True,
              help="Batches of similar-length sentences (less padding) instead of random ones.")
@click.option("--bf16/--float32", "use_amp", default=False, show_default=True,
              help="Train under CPU bf16 autocast.")
@click.option("--fold", default=None, metavar="I/K",
              help="A fold teacher: train without contiguous block I of K of train, for out-of-fold soft labels "
                   "(`swener teacher out-of-fold`).")
@gold_option
@click.option("--min-updates", type=int, callback=at_least(1), default=None,
              help="Multiply --epochs and --patience by the smallest factor giving at least this many updates "
                   f"(few gold sentences; the gold curve uses {config.GOLD_TEACHER_MIN_UPDATES}).")
def teacher_train(corpus_name: str, backbone: str, out: Path, epochs: int, patience: int, lr: float,
                  batch_size: int, crf: bool, decoding: str, max_sentences: int | None, seed: int,
                  freeze_word_embeddings: bool, length_buckets: bool, use_amp: bool, fold: str | None,
                  gold: int | None, min_updates: int | None) -> None:
    """Fine-tune a flair SequenceTagger over a transformer backbone; keeps the best model on dev F1."""
    from swener.kd.folds import parse_fold
    from swener.teacher import run as teacher_lib

    if fold:
        parse_fold(fold)  # a wrong value fails before the imports and the backbone
    settings = teacher_lib.TeacherSettings(backbone=backbone, use_crf=crf, decoding=decoding, learning_rate=lr,
                                           batch_size=batch_size, epochs=epochs, patience=patience,
                                           freeze_word_embeddings=freeze_word_embeddings, use_amp=use_amp,
                                           length_buckets=length_buckets, seed=seed, fold=fold, gold=gold,
                                           min_updates=min_updates)
    click.echo(f"teacher: {teacher_lib.train_teacher(corpus_name, settings, out, max_sentences)}")


@teacher.command("soft-labels")
@teacher_option
@corpus_option
@click.option("--split", "splits", multiple=True,
              help="Splits to write (default: train and dev, unless only --text is given; test only when asked for).")
@click.option("--text", "texts", multiple=True, type=click.Path(path_type=Path),
              help="A file of unlabelled Swedish text (.txt or .txt.gz) to write as a transfer set.")
@click.option("--max-sentences", type=int, callback=at_least(1), default=None,
              help="Only the first N sentences of each split/text.")
@click.option("--topk", type=int, callback=at_least(1), default=None,
              help="Store only the k most likely tags per token.")
@click.option("--bf16/--float32", default=False, show_default=True, help="Run the teacher under CPU bf16 autocast.")
@gold_option
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder: <out>/<split>.npz")
def teacher_soft_labels(teacher_path: str, corpus_name: str, splits: tuple[str, ...], texts: tuple[Path, ...],
                        max_sentences: int | None, topk: int | None, bf16: bool, gold: int | None, out: Path) -> None:
    """Write the teacher's per-token log-distributions, one file per split (and per text file)."""
    from swener.teacher import run as teacher_lib

    splits = splits or (() if texts else ("train", "dev"))
    for path in teacher_lib.write_soft_labels(_existing_file(teacher_path, "teacher model"), corpus_name,
                                              list(splits), list(texts), out, max_sentences=max_sentences, topk=topk,
                                              bf16=bf16, gold=gold):
        click.echo(f"wrote {path}")


@teacher.command("out-of-fold")
@click.option("--soft-labels", "fold_dirs", multiple=True, required=True,
              type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="The soft-label folder of each fold teacher (repeat: one per fold 1..K).")
@click.option("--in-fold", is_flag=True, default=False,
              help="The control: each train block from a teacher that trained on it, not the one that held it out.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder of the merged caches.")
def teacher_out_of_fold(fold_dirs: tuple[Path, ...], in_fold: bool, out: Path) -> None:
    """Join fold teachers' caches: train from the teacher that did not see each block, the rest their mean."""
    from swener.kd.folds import merge

    for path in merge(list(fold_dirs), out, held_out=not in_fold):
        click.echo(f"wrote {path}")


@teacher.command("select-transfer")
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path, file_okay=False, exists=True),
              required=True, help="The cache folder holding the texts' transfer caches.")
@click.option("--text", "texts", multiple=True, required=True, type=click.Path(path_type=Path),
              help="A cached transfer text to choose from (repeat for several, taken in this order).")
@click.option("--name", required=True, help="Name of the new transfer set: writes DIR/NAME.txt.gz and its cache.")
@click.option("--min-entities", type=int, callback=at_least(1), default=1, show_default=True,
              help="Keep sentences where the teacher predicts at least this many entities.")
@click.option("--max-sentences", type=int, callback=at_least(1), default=None,
              help="Keep at most the first N chosen sentences.")
def teacher_select_transfer(soft_dir: Path, texts: tuple[Path, ...], name: str, min_entities: int,
                            max_sentences: int | None) -> None:
    """An entity-dense transfer set: the cached sentences in which the teacher finds entities."""
    import json

    from swener.teacher.selection import select_dense

    text, cache, summary = select_dense(soft_dir, list(texts), name, min_entities, max_sentences)
    click.echo(json.dumps(summary, indent=2))
    click.echo(f"wrote {text} and {cache}; train with --transfer {text}")


@teacher.command("against-gold")
@corpus_option
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="The cache folder (swener teacher soft-labels --out).")
@click.option("--split", "splits", multiple=True, default=("train", "dev"), show_default=True,
              help="Cached splits to compare with their gold tags.")
def teacher_against_gold(corpus_name: str, soft_dir: Path, splits: tuple[str, ...]) -> None:
    """How far the cached distributions are from gold: the teacher's F1, token accuracy, mass on the gold tag."""
    import json

    from swener.data import corpora
    from swener.kd import softlabels
    from swener.kd.against_gold import against_gold

    corpus = corpora.load(corpus_name)
    out = {}
    for split in splits:
        if split not in corpus.splits:
            raise SwenerError(f"{corpus_name} has no split {split!r} (it has {', '.join(corpus.splits)})")
        path = soft_dir / f"{split}.npz"
        soft = softlabels.read(path)
        gold = corpus.splits[split][:len(soft)]
        softlabels.validate(soft, path, [s.tokens for s in gold], split=split)
        out[split] = against_gold(soft, [s.tags for s in gold])
    click.echo(json.dumps(out, indent=2))


@teacher.command("kbest")
@teacher_option
@corpus_option
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), required=True,
              help="The teacher's soft-label folder; <dir>/<split>.npz gets the k-best arrays.")
@click.option("--split", "splits", multiple=True, help="Splits to add them to (default: train, unless --text).")
@click.option("--text", "texts", multiple=True, type=click.Path(path_type=Path),
              help="A transfer text whose cache (<dir>/transfer-<name>.npz) gets them too (repeatable).")
@click.option("--k", type=int, callback=at_least(1), default=config.DEFAULT_KBEST, show_default=True,
              help="Paths per sentence.")
@gold_option
def teacher_kbest(teacher_path: str, corpus_name: str, soft_dir: Path, splits: tuple[str, ...],
                  texts: tuple[Path, ...], k: int, gold: int | None) -> None:
    """Add the teacher's k best BIOES paths and their log-probabilities to its cache (for --kd-target kbest)."""
    from swener.teacher.run import add_teacher_kbest

    for path in add_teacher_kbest(_existing_file(teacher_path, "teacher model"), corpus_name, soft_dir,
                                  list(splits) or ([] if texts else ["train"]), k, texts, gold):
        click.echo(f"wrote {path}")


@teacher.command("evaluate")
@teacher_option
@corpus_option
@click.option("--soft-labels", "soft_dir", type=click.Path(path_type=Path), default=None,
              help="Its soft-label folder, to report the one-time cost of the cache.")
@click.option("--max-sentences", type=int, callback=at_least(1), default=None)
@click.option("--diagnostics/--no-diagnostics", default=True, show_default=True,
              help="Also count invalid BIOES transitions in the test predictions and compare the decodings on dev.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="teacher.json to write.")
def teacher_evaluate(teacher_path: str, corpus_name: str, soft_dir: Path | None, max_sentences: int | None,
                     diagnostics: bool, out: Path) -> None:
    """Score the teacher on the test sets and measure its cost, for the report."""
    from swener.teacher import run as teacher_lib

    results = teacher_lib.evaluate_teacher(_existing_file(teacher_path, "teacher model"), corpus_name, out,
                                           soft_dir, max_sentences, diagnostics)
    for name, row in results["scores"].items():
        click.echo(f"{name}: micro F1 {row['micro_f1']:.4f}")
    click.echo(f"{results['cost']['tokens_per_second']:.0f} tokens/s; wrote {out}")


@teacher.command("bench")
@teacher_option
@corpus_option
@click.option("--max-sentences", type=int, callback=at_least(1), default=2000, show_default=True)
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


@teacher.command("bench-train")
@corpus_option
@click.option("--backbone", default=config.BACKBONE, show_default=True)
@gold_option
@click.option("--epochs", type=int, callback=at_least(1), default=1, show_default=True,
              help="Epochs per precision (the learning-rate schedule spans them).")
@click.option("--lr", type=float, callback=positive, default=config.TEACHER_LR, show_default=True)
@click.option("--batch-size", type=int, callback=at_least(1), default=config.TEACHER_BATCH, show_default=True)
@click.option("--max-sentences", type=int, callback=at_least(1), default=None)
@click.option("--freeze-word-embeddings/--train-word-embeddings", default=config.TEACHER_FREEZE, show_default=True)
@click.option("--work", type=click.Path(path_type=Path), default=None,
              help="Folder for the two trained teachers (default: a temporary one, removed).")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="JSON file to write.")
def teacher_bench_train(corpus_name: str, backbone: str, gold: int | None, epochs: int, lr: float, batch_size: int,
                        max_sentences: int | None, freeze_word_embeddings: bool, work: Path | None, out: Path) -> None:
    """Fine-tune the teacher in float32, then in bf16 autocast, in one process: seconds per epoch and dev F1."""
    from swener.teacher.bench_train import precision_bench

    result = precision_bench(corpus_name, backbone, out, gold=gold, epochs=epochs, learning_rate=lr,
                             batch_size=batch_size, max_sentences=max_sentences, work=work,
                             freeze_word_embeddings=freeze_word_embeddings)
    for name, row in result["variants"].items():
        click.echo(f"{name}: {row['train_seconds_per_epoch']:.1f} s an epoch of training, dev F1 {row['dev_f1']:.4f}")
    click.echo(f"wrote {out}")
