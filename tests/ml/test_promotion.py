"""ml.promotion: the paired comparison and the gate, on hand-made outcomes."""

import numpy as np
import pytest

from ml.promotion import compare_paired, judge, wilson_interval


def outcomes(both: int, only_candidate: int, only_active: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    candidate = [True] * both + [True] * only_candidate + [False] * only_active + [False] * neither
    active = [True] * both + [False] * only_candidate + [True] * only_active + [False] * neither
    return np.array(candidate), np.array(active)


def verdict(both: int, only_candidate: int, only_active: int, neither: int, *, margin: float = 0.02):
    comparison = compare_paired(*outcomes(both, only_candidate, only_active, neither))
    return judge(comparison, margin=margin, must_be_ahead=True, what="held-out reviewed faces")


def test_wilson_interval_matches_the_published_example() -> None:
    # Newcombe (1998), unpaired paper's example: 81 of 263 gives 0.2553 to 0.3662.
    interval = wilson_interval(81, 263)
    assert (round(interval.low, 4), round(interval.high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 0).low == 0 and wilson_interval(0, 0).high == 1


def test_paired_interval_agrees_with_the_normal_approximation_on_many_faces() -> None:
    comparison = compare_paired(*outcomes(6000, 800, 200, 3000))  # 10,000 faces, 600 more right

    # McNemar's normal approximation: the standard error of the paired difference.
    discordant, lead = 800 + 200, 800 - 200
    spread = 1.96 * ((discordant - lead**2 / 10_000) ** 0.5) / 10_000
    assert comparison.difference == pytest.approx(0.06)
    assert comparison.difference_interval.low == pytest.approx(0.06 - spread, abs=0.001)
    assert comparison.difference_interval.high == pytest.approx(0.06 + spread, abs=0.001)
    assert comparison.only_candidate_right == 800 and comparison.only_active_right == 200


def test_paired_interval_stays_inside_the_possible_with_few_faces() -> None:
    comparison = compare_paired(*outcomes(0, 5, 0, 0))  # five faces, only the candidate right

    assert comparison.difference == 1.0
    assert 0 < comparison.difference_interval.low < 1 and comparison.difference_interval.high == 1.0


def test_a_clear_win_passes() -> None:
    result = verdict(600, 80, 20, 300)

    assert result.passed
    assert "the candidate reads 68.0%" in result.words and "the active version 62.0%" in result.words
    assert "not worse by more than 2.0 points at 95% confidence" in result.words


def test_a_clear_loss_fails_as_worse() -> None:
    result = verdict(600, 20, 80, 300)

    assert not result.passed and result.words.endswith(": worse by more than the margin of 2.0 points")


def test_a_sure_loss_that_may_pass_the_margin_is_called_so() -> None:
    comparison = compare_paired(*outcomes(6000, 100, 300, 3600))  # 10,000 faces, 2 points behind

    result = judge(comparison, margin=0.02, must_be_ahead=False, what="FER2013 PublicTest faces")

    assert not result.passed and result.words.endswith("worse, possibly by more than the margin of 2.0 points")


def test_a_small_sure_loss_within_the_margin_passes_where_being_ahead_is_not_asked() -> None:
    comparison = compare_paired(*outcomes(6000, 100, 150, 3750))  # 10,000 faces, 0.5 points worse

    result = judge(comparison, margin=0.02, must_be_ahead=False, what="FER2013 PublicTest faces")

    assert comparison.difference_interval.high < 0 and result.passed


def test_a_tie_keeps_the_active_version() -> None:
    result = verdict(600, 50, 50, 300, margin=0.1)

    assert not result.passed and result.words.endswith(": a tie, and a tie keeps the active version")


def test_behind_within_the_margin_keeps_the_active_version() -> None:
    result = verdict(6000, 100, 120, 3780, margin=0.05)  # 10,000 faces, 0.2 points behind

    assert not result.passed and "behind by 0.2 points, within the margin" in result.words


def test_too_few_faces_cannot_tell() -> None:
    result = verdict(15, 4, 1, 4)  # 24 faces, the candidate three faces ahead

    assert not result.passed and "too few faces to tell" in result.words


def test_no_faces_is_no_evidence() -> None:
    comparison = compare_paired(np.zeros(0, bool), np.zeros(0, bool))

    assert not judge(comparison, margin=0.02, must_be_ahead=False, what="faces").passed


def test_outcomes_of_different_faces_are_refused() -> None:
    with pytest.raises(ValueError, match="same faces"):
        compare_paired(np.ones(3, bool), np.ones(4, bool))
