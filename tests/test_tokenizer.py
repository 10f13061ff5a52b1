"""The Swedish tokeniser: abbreviations, numbers, sentence ends, offsets."""
import pytest

from swener.data.tokenizer import split_sentences, tokenize_words


def words(text):
    return [[t.text for t in s] for s in split_sentences(text)]


@pytest.mark.parametrize("abbr", ["t.ex.", "bl.a.", "s.k.", "d.v.s.", "m.m.", "ca."])
def test_abbreviations_stay_whole_and_do_not_end_sentences(abbr):
    text = f"Vi såg {abbr} Volvo och Saab i Göteborg. Sedan åkte vi hem."
    assert words(text) == [["Vi", "såg", abbr, "Volvo", "och", "Saab", "i", "Göteborg", "."],
                           ["Sedan", "åkte", "vi", "hem", "."]]


def test_numbers_with_spaces_and_decimal_commas():
    assert tokenize_words("Det kostar 5 000 kr eller 3,5 procent av 1 250 000,50 kr år 2021.") == [
        "Det", "kostar", "5 000", "kr", "eller", "3,5", "procent", "av", "1 250 000,50", "kr", "år", "2021", "."]


def test_sentence_ends_and_lines():
    assert words("Hej! Vad heter du?\nJag heter Anna.") == [["Hej", "!"], ["Vad", "heter", "du", "?"],
                                                            ["Jag", "heter", "Anna", "."]]


def test_offsets_slice_the_input_back():
    text = "\ufeffEU-kommissionen: ”Nej”, sa hon.\r\n\r\nUSA:s president, bl.a. i Sverige…"
    sentences = split_sentences(text)
    assert [t.text for t in sentences[0]][:2] == ["EU-kommissionen", ":"]
    for sentence in sentences:
        for token in sentence:
            assert text[token.start:token.end] == token.text
    assert ["USA:s", "president", ",", "bl.a.", "i", "Sverige", "…"] in [[t.text for t in s] for s in sentences]
