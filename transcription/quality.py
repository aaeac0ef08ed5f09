"""How far one transcript is from another: the yardstick for tests and benchmarks."""

from __future__ import annotations


def character_error_rate(reference: str, hypothesis: str) -> float:
    """Character edits (Levenshtein) from reference to hypothesis over the reference's length."""
    # Whitespace is ignored: Chinese has none, and Vosk's word splits are not what we measure.
    # Against an empty reference, any text at all counts as entirely wrong (1.0).
    ref = "".join(reference.split())
    hyp = "".join(hypothesis.split())
    if not ref:
        return 0.0 if not hyp else 1.0
    previous = list(range(len(hyp) + 1))
    for i, ref_char in enumerate(ref, start=1):
        current = [i]
        for j, hyp_char in enumerate(hyp, start=1):
            current.append(
                min(
                    previous[j] + 1,  # ref_char deleted
                    current[j - 1] + 1,  # hyp_char inserted
                    previous[j - 1] + (ref_char != hyp_char),  # kept or substituted
                )
            )
        previous = current
    return previous[-1] / len(ref)
