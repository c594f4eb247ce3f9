"""JSON merge-patch as RFC 7396 defines it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pushgod.model.merge_patch import compose, merge_patch
from pushgod.model.things import combine_changes

KEYS = st.sampled_from(["a", "b", "c", "d"])  # few keys, so patches and targets overlap
SCALARS = (
    st.booleans()
    | st.integers(min_value=-1000, max_value=1000)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4)
)
JSON = st.recursive(
    st.none() | SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=8,
)
NO_NULLS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner | st.none(), max_size=3) | st.dictionaries(KEYS, inner, max_size=4)
    ),
    max_leaves=8,
)
OBJECTS = st.dictionaries(KEYS, JSON, max_size=4)
FEWER = settings(max_examples=50)  # the rule is small; 7 properties x 50 cover it, and fast
NON_OBJECTS = st.none() | SCALARS | st.lists(JSON, max_size=3)


def has_null_member(value: Any) -> bool:
    """A null directly held by an object, at any depth through objects (not inside arrays)."""
    return isinstance(value, dict) and any(v is None or has_null_member(v) for v in value.values())


# RFC 7396, Appendix A.
@pytest.mark.parametrize(
    ("target", "patch", "result"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        ({"a": "b"}, {"a": None}, {}),
        ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
        ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
        ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
        ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
        ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
        (["a", "b"], ["c", "d"], ["c", "d"]),
        ({"a": "b"}, ["c"], ["c"]),
        ({"a": "foo"}, None, None),
        ({"a": "foo"}, "bar", "bar"),
        ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
        ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
    ],
)
def test_rfc_7396_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge_patch(target, patch) == result


@FEWER
@given(JSON, JSON)
def test_applying_twice_is_applying_once(target: Any, patch: Any) -> None:
    once = merge_patch(target, patch)
    assert merge_patch(once, patch) == once


@FEWER
@given(OBJECTS, OBJECTS)
def test_null_deletes_and_other_keys_survive(target: dict[str, Any], patch: dict[str, Any]) -> None:
    result = merge_patch(target, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in result
        else:
            assert key in result
    for key, value in target.items():
        if key not in patch:
            assert result[key] == value


@FEWER
@given(NO_NULLS)
def test_a_patch_without_nulls_applied_to_nothing_is_the_patch(patch: Any) -> None:
    assert merge_patch({}, patch) == patch
    assert not has_null_member(merge_patch({}, patch))


@FEWER
@given(JSON)
def test_the_result_of_an_object_patch_holds_no_null_members_from_the_patch(patch: Any) -> None:
    assert not has_null_member(merge_patch({}, patch))


@FEWER
@given(JSON, JSON)
def test_inputs_are_never_modified(target: Any, patch: Any) -> None:
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)
    result = merge_patch(target, patch)
    assert target == target_before
    assert patch == patch_before
    if isinstance(result, dict):
        result["__new__"] = 1  # the result is a new object: changing it changes no input
        assert target == target_before
        assert patch == patch_before


@FEWER
@given(JSON, NON_OBJECTS)
def test_a_non_object_patch_replaces_the_target(target: Any, patch: Any) -> None:
    assert merge_patch(target, patch) == patch


@FEWER
@given(NON_OBJECTS, OBJECTS)
def test_an_object_patch_on_a_non_object_starts_from_empty(target: Any, patch: Any) -> None:
    assert merge_patch(target, patch) == merge_patch({}, patch)


def one_patch_says_it(first: Any, second: Any) -> bool:
    """Whether `compose` is exact for these two: `second` never patches with an object
    what `first` set to something else than an object (or deleted)."""
    if not isinstance(second, dict):
        return True
    if not isinstance(first, dict):
        return False
    return all(
        key not in first or (isinstance(first[key], dict) and one_patch_says_it(first[key], value))
        for key, value in second.items()
        if isinstance(value, dict)
    )


@FEWER
@given(JSON, JSON, JSON)
def test_composed_patches_do_what_both_do(target: Any, first: Any, second: Any) -> None:
    """One change row stands for a burst of device updates (docs/mqtt.md, "Bursts")."""
    assume(one_patch_says_it(first, second))
    both = merge_patch(merge_patch(target, first), second)
    assert merge_patch(target, compose(first, second)) == both


def test_composing_keeps_the_later_object_where_no_patch_can_say_it() -> None:
    """Deleting a key and then patching it with an object replaces the old object; a
    single merge-patch can only merge into it."""
    target = {"box": {"old": 1}}
    first, second = {"box": None}, {"box": {"new": 2}}
    assert merge_patch(merge_patch(target, first), second) == {"box": {"new": 2}}
    assert compose(first, second) == second
    assert merge_patch(target, compose(first, second)) == {"box": {"old": 1, "new": 2}}


def test_combined_changes_keep_the_latest_observation() -> None:
    """A state's observed_at only moves forward (_merge), so the change that stands for
    two updates says so too, even when the clock stepped back between them."""
    earlier = {"action": "update", "attrs": {"v": 1}, "observed_at": 2_000}
    later = {"action": "update", "attrs": {"w": 2}, "observed_at": 1_000}
    assert combine_changes(earlier, later) == {
        "action": "update",
        "attrs": {"v": 1, "w": 2},
        "observed_at": 2_000,
    }
