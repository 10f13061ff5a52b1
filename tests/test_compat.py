"""Models saved by the code before the package moved into subpackages (commit 8a28b17) still load.

The files in tests/data/saved-8a28b17/ were written by that code (`make_files.py` there, run with
the old package on PYTHONPATH): two tiny students and a tiny teacher, with the scores each gave on
three test sentences, and an int8 variant of one student. After `import swener` they load with
`flair.nn.Classifier.load` (the int8 file with `swener.serve.names.load_tagger`), as the classes
they were saved as, and score the same sentences as before. The old class paths still import.
"""
import json
from pathlib import Path

import flair
import pytest
import torch
from flair.data import Sentence

import swener  # noqa: F401  (registers swener's Flair classes)

DATA = Path(__file__).parent / "data" / "saved-8a28b17"
EXPECTED = json.loads((DATA / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED["outputs"]))
def test_old_model_loads_and_scores_as_before(name):
    expected = EXPECTED["outputs"][name]
    if name.endswith(".int8.pt"):
        from swener.serve.names import load_tagger

        tagger = load_tagger(str(DATA / name))
        assert type(tagger.encoder_net.lstm).__module__.startswith("torch.ao.nn.quantized")
    else:
        tagger = flair.nn.Classifier.load(DATA / name)
    assert type(tagger).__name__ == expected["class"]
    tagger.eval()
    with torch.no_grad():
        scores = tagger.forward(*tagger._prepare_tensors([Sentence(list(t)) for t in EXPECTED["sentences"]]))
    first = scores[0] if isinstance(scores, tuple) else scores
    assert float(first.double().sum()) == pytest.approx(expected["sum"], rel=1e-5)
    assert first.flatten()[:20].double().tolist() == pytest.approx(expected["first"], rel=1e-5, abs=1e-6)


def test_old_student_keeps_its_settings():
    tagger = flair.nn.Classifier.load(DATA / "cnn-8a28b17.pt")
    assert (tagger.alpha, tagger.use_crf, tagger.card["family"]) == (0.5, False, "cnn")


def test_old_import_paths_are_the_new_classes():
    from swener.embeddings import CompactFastTextEmbeddings
    from swener.students.tagger import StudentTagger
    from swener.taggers import StudentTagger as OldStudentTagger
    from swener.teacher.model import TeacherTagger
    from swener.teacher_tagger import TeacherTagger as OldTeacherTagger
    from swener.vectors.embeddings import CompactFastTextEmbeddings as NewEmbeddings

    assert (OldStudentTagger, OldTeacherTagger, CompactFastTextEmbeddings) == (StudentTagger, TeacherTagger,
                                                                                NewEmbeddings)
