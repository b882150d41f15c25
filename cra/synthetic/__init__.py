r"""A synthetic video-question-grounding world with planted confounders, in the official NExT-GQA layout.

Real datasets never tell us *why* a model answered; this world does. Every question's evidence
segment, the frames where its answer's action also happens elsewhere (distractors) and the shortcuts
that a model could use instead (a word in the question, the background of the video) are known, and
the shortcuts' strengths are knobs.

The structural causal model of one question (``C`` situations, one per action; ``s_l``, ``s_v`` the
confounder strengths of the split; ``p_a`` = ``answer_prob``), drawn by :func:`draw_scm`::

    Z ~ Uniform{0..C-1}                                  situation (latent confounder)
    A ~ P(A | Z):  action(Z) w.p. p_a, else Uniform(other actions)
                                                         action of the queried event = the correct answer
    E := entity_partner(Z) w.p. s_l, else Uniform        subject of the queried event, named in the question
    S := scene_partner(Z)  w.p. s_v, else Uniform        scene (background)
    R := k-1 other events: entities != E, actions != A   (one of them is named in the question)
    T := time layout: ordered non-overlapping intervals of the events, the distractor and the decoys
    D := w.p. p_d, action A done by an entity in no event, in its own interval
    K := for each other event, w.p. p_k, a decoy: its action done by yet another entity
    Q := "what does the <E> do after|before the <E_ref> <action_ref>"  ("someone" for the <E_ref>
                                                         with name_reference_entity false);
         "what does the <E> do" with question_form subject
    C := candidates: A, the partners of E and S, the actions of R, then unused actions (5, shuffled)
    V_t := noise_std * eps_t,  eps_t ~ N(0, I/D)
           + scene_scale * s[S]                          (frames outside every interval; every frame
                                                          with scene_in_events)
           + sum over the intervals covering t of (entity_scale * e[entity] + action_scale * a[action])
                                                         (no e[E] in the evidence when entity_in_evidence
                                                          is false)
    G := seconds of A's event (the gsub evidence segment); Y := index of A in C

So P(A | Z = z) = p_a 1[A = action(z)] + (1 - p_a) 1[A != action(z)] / (C - 1): with p_a < 1 every
answer is possible in every situation, and an adjustment over the true Z is not degenerate. Neither
the word nor the scene causes the answer; their association with it flows only through ``Z`` (the
back-door paths E <- Z -> A and S <- Z -> A). A negative strength *reverses* a confounder: w.p.
``|s|`` the word (scene) is the partner of another situation. ``s = 0`` breaks it: the world under
``do(E)``, ``do(S)``. By default the scene is drawn only in frames outside every event, distractor
and decoy, so the evidence frames carry no scene and a mediator that reads only them is blind to it.

Splits: ``train``, ``val`` and ``test-id`` use (``lang_strength``, ``vis_strength``); ``val-ood`` and
``test-ood`` use (``lang_strength_ood``, ``vis_strength_ood``); ``val-ood`` is for checkpoint selection.
Everything is a deterministic function of ``(seed, config)``; the files are described in
:mod:`cra.synthetic.io`.

One job per module: :mod:`~cra.synthetic.config` (parameters), :mod:`~cra.synthetic.scm` (drawing),
:mod:`~cra.synthetic.io` (files), :mod:`~cra.synthetic.truth` (faithfulness measures),
:mod:`~cra.synthetic.checks` (measured confounding), :mod:`~cra.synthetic.draw` (the graph).
"""

from cra.synthetic.checks import (
    expected_alignment,
    format_confounding,
    measure_confounding,
    print_confounding,
    word_answer_table,
)
from cra.synthetic.config import ACTIONS, ENTITIES, NUM_FRAMES, OOD_SPLITS, SCENES, SPLITS, WORLD_CONFIGS, WorldConfig
from cra.synthetic.draw import SCM_EDGES, SCM_NODES, draw_scm, scm_graph
from cra.synthetic.io import (
    FORMAT,
    FORMAT_VERSION,
    QA_HEADER,
    load_split,
    load_truth,
    load_world,
    make_world,
    split_paths,
    world_metadata,
)
from cra.synthetic.scm import (
    QUESTION_RE,
    Split,
    Vocabulary,
    draw_question,
    generate_split,
    generate_world,
    make_vocabulary,
    render_frames,
)
from cra.synthetic.truth import (
    BACKGROUND,
    DECOY,
    DISTRACTOR,
    EVIDENCE,
    OTHER_EVENT,
    ROLE_NAMES,
    frame_roles,
    grounding_outcomes,
    uniform_mass,
    weight_mass,
)

__all__ = [
    "ACTIONS",
    "ENTITIES",
    "NUM_FRAMES",
    "OOD_SPLITS",
    "SCENES",
    "SPLITS",
    "WORLD_CONFIGS",
    "WorldConfig",
    "QUESTION_RE",
    "Split",
    "Vocabulary",
    "draw_question",
    "generate_split",
    "generate_world",
    "make_vocabulary",
    "render_frames",
    "FORMAT",
    "FORMAT_VERSION",
    "QA_HEADER",
    "load_split",
    "load_truth",
    "load_world",
    "make_world",
    "split_paths",
    "world_metadata",
    "BACKGROUND",
    "DECOY",
    "DISTRACTOR",
    "EVIDENCE",
    "OTHER_EVENT",
    "ROLE_NAMES",
    "frame_roles",
    "grounding_outcomes",
    "uniform_mass",
    "weight_mass",
    "expected_alignment",
    "format_confounding",
    "measure_confounding",
    "print_confounding",
    "word_answer_table",
    "SCM_EDGES",
    "SCM_NODES",
    "draw_scm",
    "scm_graph",
]
