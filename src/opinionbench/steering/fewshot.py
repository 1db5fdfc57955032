"""Few-shot steering: the group's TRUE distributions on k similar questions, never the question itself.

Neighbours come from `opinionbench.neighbours` (the same ranking the similar-questions baseline
uses), restricted to questions for which the dataset has that group's distribution.
"""

from __future__ import annotations

from opinionbench.prompting import distribution_json, format_options
from opinionbench.steering import steerings
from opinionbench.steering.base import Context, SteeringData
from opinionbench.steering.persona import phrases
from opinionbench.steering.templates import fill, templates_hash

TEMPLATES = ("fewshot.txt", "fewshot_example.txt", "groups.yaml")


def examples(data: SteeringData, qkey: str, attribute: str, group: str) -> list[str]:
    """qkeys of the k examples: most similar first, the question itself excluded."""
    return data.similar.most_similar(qkey, data.k_shots, allowed=data.example_pool(attribute, group))


@steerings.register("few-shot")
def context(data: SteeringData, qkey: str, attribute: str, group: str) -> Context:
    label = phrases(attribute, group)["label"]
    blocks = []
    for other in examples(data, qkey, attribute, group):
        row = data.questions.loc[other]
        blocks.append(fill(
            "fewshot_example.txt", question=row["question"],
            options=format_options(list(row["options"]), range(len(row["options"]))),
            distribution=distribution_json(data.truth[(other, attribute, group)]),
        ))
    system = fill("fewshot.txt", group_label=label, examples="\n\n".join(blocks))
    return Context(system, label, templates_hash(*TEMPLATES), TEMPLATES)
