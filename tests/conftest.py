"""Shared test setup: offline Hugging Face, generated files in temporary folders."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory):
    """A tiny random BERT with a WordPiece vocabulary from the corpus: a stand-in transformer for tests."""
    from collections import Counter

    from transformers import BertConfig, BertModel, BertTokenizerFast

    from swener.data import corpora

    folder = tmp_path_factory.mktemp("tiny-bert")
    corpus = corpora.load("webbnyheter2012")
    counts = Counter(t for s in corpus.splits["train"][:500] for t in s.tokens)
    chars = sorted({c for s in corpus.splits["train"] for t in s.tokens for c in t})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars, *(f"##{c}" for c in chars),
             *(w for w, _ in counts.most_common(800) if w not in chars)]
    (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=False)
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_vectors(tmp_path_factory):
    """Tiny fastText vectors (gensim, 16 dims) on the first Webbnyheter train sentences, compacted."""
    from gensim.models import FastText

    from swener.data import corpora
    from swener.vectors.embeddings import CompactVectors

    sentences = [s.tokens for s in corpora.load("webbnyheter2012").splits["train"][:1500]]
    model = FastText(sentences, vector_size=16, min_count=2, epochs=2, bucket=5000, workers=1, seed=1)
    path = tmp_path_factory.mktemp("vectors") / "vectors.npz"
    CompactVectors.from_keyed_vectors(model.wv, max_words=5000, max_ngrams=2000).save(path)
    return path


def trained_tiny_student(vectors):
    """A tiny BiLSTM-CRF student after a few SGD steps on Webbnyheter train (train mode): for the tagging tests."""
    import flair
    import torch

    from swener.data import corpora
    from swener.students.tagger import build_student
    from swener.vectors.embeddings import CompactFastTextEmbeddings

    flair.set_seed(1)
    corpus = corpora.load("webbnyheter2012")
    tagger = build_student("bilstm-crf", CompactFastTextEmbeddings(vectors), corpus.types, hidden_size=8,
                           card={"corpus": "webbnyheter2012", "family": "bilstm-crf", "seed": 1})
    train = list(corpora.to_flair(corpus, 200).train)[:64]
    optimizer = torch.optim.SGD(tagger.parameters(), lr=0.05)
    for start in range(0, 64, 16):
        optimizer.zero_grad()
        tagger.forward_loss(train[start:start + 16])[0].backward()
        optimizer.step()
    return tagger
