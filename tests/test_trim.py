"""Vocabulary trimming: identical segmentation where the path's pieces are kept, a fallback where
one is not, the same hidden states on the same sequences, and a folder Hugging Face loads."""
import json

import pytest
import torch

from swener.teacher import trim

PIECES = ["<s>", "<pad>", "</s>", "<unk>", "▁", "a", "b", "k", "n", "r", "t", "▁Stock", "holm", "▁Stockholm",
          "▁och", "▁bank", "▁banken", "en", "α", "β", "▁αβ", "▁→", "→", "▁Zürich", "<mask>"]
SPECIALS = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": len(PIECES) - 1}


@pytest.fixture(scope="module")
def tiny_unigram(tmp_path_factory):
    """A tiny XLM-R folder with a Unigram tokenizer whose pieces include Greek ones."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import XLMRobertaConfig, XLMRobertaModel

    folder = tmp_path_factory.mktemp("tiny-xlmr")
    vocab = [(p, 0.0 if p in SPECIALS else -1.0 - 0.1 * i) for i, p in enumerate(PIECES)]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A </s>",
                                                             special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer.add_special_tokens(list(SPECIALS))
    tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "XLMRobertaTokenizer",
                                                              "model_max_length": 512}))
    config = XLMRobertaConfig(vocab_size=len(PIECES), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                              intermediate_size=32, max_position_embeddings=64, pad_token_id=1)
    torch.manual_seed(0)
    XLMRobertaModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def trimmed(tiny_unigram, tmp_path_factory):
    text = tmp_path_factory.mktemp("text") / "raw.txt"
    # every 100th line is held back (indices 99 and 199): they never choose pieces
    lines = ["Stockholm och banken"] * 99 + ["αβ"] + ["Stockholm och banken"] * 99 + ["banken Zürich"]
    text.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("out") / "trimmed"
    manifest = trim.trim(tiny_unigram, out, [text], train_corpora=(), check_splits=())
    return out, manifest


def test_latin_rule():
    assert trim.latin_piece("▁Zürich") and trim.latin_piece("→") and trim.latin_piece("1999,")
    assert not trim.latin_piece("▁αβ") and not trim.latin_piece("α")


def test_kept_pieces_follow_the_rule(trimmed):
    out, manifest = trimmed
    kept = [piece for piece, _ in json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]]
    assert set(SPECIALS) <= set(kept)
    assert {"▁Stockholm", "▁och", "▁banken", "▁Zürich", "▁→"} <= set(kept)  # seen, or Latin/symbol
    assert not {"α", "β", "▁αβ"} & set(kept)  # Greek, seen only in the held-back line
    assert manifest["pieces"] == {**manifest["pieces"], "before": len(PIECES), "after": len(kept)}


def test_segmentation_identical_where_pieces_are_kept_and_a_fallback_otherwise(tiny_unigram, trimmed):
    from tokenizers import Tokenizer

    out, manifest = trimmed
    full = Tokenizer.from_file(str(tiny_unigram / "tokenizer.json"))
    small = Tokenizer.from_file(str(out / "tokenizer.json"))
    keep = json.loads((out / "kept_ids.json").read_text())
    for text in ["Stockholm och banken", "banken Zürich → Stockholm", "bank en"]:
        assert [keep[i] for i in small.encode(text).ids] == full.encode(text).ids, text
    # "αβ" needs a dropped piece: the trimmed tokenizer falls back to <unk>, never to a wrong piece
    assert full.encode("αβ").tokens == ["<s>", "▁αβ", "</s>"]
    pieces = [json.loads((out / "tokenizer.json").read_text())["model"]["vocab"][i][0]
              for i in small.encode("αβ").ids[1:-1]]
    assert pieces in (["▁", "<unk>"], ["<unk>"])
    held = manifest["identical_segmentation"]["raw held-back slice"]
    assert held == {"share": 0.5, "sentences": 2}  # of the two held-back lines, the Greek one differs


def test_same_hidden_states_and_loadable_offline(tiny_unigram, trimmed):
    from transformers import AutoModel, AutoTokenizer

    out, manifest = trimmed
    assert manifest["max_hidden_state_difference"] == pytest.approx(0.0, abs=1e-6)
    full, small = AutoModel.from_pretrained(str(tiny_unigram)).eval(), AutoModel.from_pretrained(str(out)).eval()
    tok_full, tok_small = AutoTokenizer.from_pretrained(str(tiny_unigram)), AutoTokenizer.from_pretrained(str(out))
    text = "Stockholm och banken → Zürich"
    with torch.no_grad():
        a = full(**tok_full(text, return_tensors="pt")).last_hidden_state
        b = small(**tok_small(text, return_tensors="pt")).last_hidden_state
    assert torch.allclose(a, b, atol=1e-6)
    assert small.get_input_embeddings().weight.shape[0] == manifest["pieces"]["after"] < len(PIECES)
    assert manifest["parameters"]["after"] < manifest["parameters"]["before"]


def test_flair_loads_the_trimmed_folder(trimmed):
    from flair.data import Sentence
    from flair.embeddings import TransformerWordEmbeddings

    out, _ = trimmed
    embeddings = TransformerWordEmbeddings(str(out), layers="-1", subtoken_pooling="first")
    sentence = Sentence(["Stockholm", "och", "banken"])
    embeddings.embed(sentence)
    assert all(token.embedding.shape == (16,) for token in sentence)
