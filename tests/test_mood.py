import math

import numpy as np
import pytest

from moodmusic import mood


def test_quadrants_follow_the_signs_and_zero_counts_as_positive():
    assert mood.quadrant(0.5, 0.5) == "happy"
    assert mood.quadrant(-0.5, 0.5) == "angry"
    assert mood.quadrant(-0.5, -0.5) == "sad"
    assert mood.quadrant(0.5, -0.5) == "calm"
    assert mood.quadrant(0.0, 0.0) == "happy"
    assert mood.quadrant(-0.01, 0.0) == "angry"


def test_vectorised_quadrants_agree_with_scalar():
    rng = np.random.default_rng(0)
    v, a = rng.uniform(-1, 1, 200), rng.uniform(-1, 1, 200)
    v[:3], a[:3] = 0.0, 0.0
    expected = [mood.quadrant_index(x, y) for x, y in zip(v, a)]
    assert mood.quadrant_indices(v, a).tolist() == expected


def test_scales_map_to_the_signed_square():
    assert mood.from_deam(1) == -1 and mood.from_deam(5) == 0 and mood.from_deam(9) == 1
    assert mood.from_unit(0) == -1 and mood.from_unit(0.5) == 0 and mood.from_unit(1) == 1


def test_named_moods_resolve_and_unknown_names_list_the_valid_ones():
    assert mood.named("Happy").as_tuple() == (0.7, 0.5)
    assert mood.named("relaxed") == mood.named("calm")
    assert mood.resolve((0.1, -0.2)) == mood.Mood(0.1, -0.2)
    with pytest.raises(mood.MoodError) as error:
        mood.named("gloomy")
    assert "epic" in str(error.value) and "mysterious" in str(error.value)


@pytest.mark.parametrize("valence,arousal", [(1.5, 0), (0, -1.01), (math.nan, 0), (0, math.inf)])
def test_out_of_range_moods_are_rejected(valence, arousal):
    with pytest.raises(mood.MoodError):
        mood.Mood(valence, arousal)


def test_every_named_mood_is_inside_the_square_and_each_quadrant_has_one():
    quadrants = {mood.quadrant(*point) for point in mood.NAMED_MOODS.values()}
    assert quadrants == set(mood.QUADRANTS)
    for point in mood.NAMED_MOODS.values():
        mood.Mood(*point)


def test_seed000_distribution_is_a_distribution_peaking_at_each_prototype():
    for name, (v, a) in mood.SEED000_PROTOTYPES.items():
        distribution = mood.seed000_distribution(v, a)
        assert math.isclose(sum(distribution.values()), 1.0, rel_tol=1e-9)
        assert max(distribution, key=distribution.get) == name
    between = mood.seed000_distribution(0.5, 0.0)  # between chill and upbeat: both carry weight
    assert between["chill"] > 0.2 and between["upbeat"] > 0.2


def test_nearest_named_mood():
    assert mood.nearest_named(0.68, 0.52) == "happy"
    assert mood.nearest_named(-0.7, 0.12) == "dark"
