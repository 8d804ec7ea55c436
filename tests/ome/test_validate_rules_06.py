"""``ngffcore.validate`` on OME-NGFF 0.6, one rule of the spec text at a time: a valid image
(or scene) is written, one thing in it is broken, and exactly the rule(s) that thing breaks
must be reported (the schema too, where it sees it). The spec suites and examples are in
``test_validate_06.py``.
"""

from __future__ import annotations

import copy
import importlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ngffcore import Problem, validate
from ngffcore.cli.main import main

from test_validate_06 import axis, group_doc, image_attrs, write_json, write_levels

zarr = pytest.importorskip("zarr")
pytest.importorskip("jsonschema")

Attrs = dict[str, Any]


def base() -> Attrs:
    """A valid 0.6 image: intrinsic (c, y, x), levels s0 (scale) and s1 (scale then
    translation), and a second system "world" reached from intrinsic by a sequence."""
    attrs = image_attrs("intrinsic", "cyx")
    ms = attrs["ome"]["multiscales"][0]
    ms["coordinateSystems"].append({"name": "world", "axes": [axis(a) for a in "cyx"]})
    ms["datasets"][1]["coordinateTransformations"] = [{
        "type": "sequence", "input": {"path": "s1"}, "output": {"name": "intrinsic"},
        "transformations": [{"type": "scale", "scale": [1, 2, 2]},
                            {"type": "translation", "translation": [0, 0.5, 0.5]}]}]
    ms["coordinateTransformations"] = [{
        "type": "sequence", "input": {"name": "intrinsic"}, "output": {"name": "world"},
        "transformations": [{"type": "translation", "translation": [0, 10, 20]},
                            {"type": "scale", "scale": [1, 2, 2]}]}]
    return attrs


def ms_of(attrs: Attrs) -> dict[str, Any]:
    return attrs["ome"]["multiscales"][0]  # type: ignore[no-any-return]


def ds_t(attrs: Attrs, level: int) -> dict[str, Any]:
    return ms_of(attrs)["datasets"][level]["coordinateTransformations"][0]  # type: ignore


def extra(attrs: Attrs) -> dict[str, Any]:
    """The multiscale's (first) additional transformation."""
    return ms_of(attrs)["coordinateTransformations"][0]  # type: ignore[no-any-return]


def write(root: Path, attrs: Attrs) -> Path:
    write_json(root / "zarr.json", group_doc(attrs))
    write_levels(root, attrs)
    return root


def check(root: Path, attrs: Attrs, **kwargs: Any) -> tuple[set[tuple[str, str]], list[Problem]]:
    problems = validate(write(root, attrs), **kwargs)
    return {(p.rule, p.severity) for p in problems}, problems


def explain(problems: list[Problem]) -> str:
    return "\n".join(map(str, problems))


def setter(*path: Any, value: Any) -> Callable[[Attrs], None]:
    """A mutation setting ``attrs[path...] = value`` below the first multiscale."""
    def mutate(attrs: Attrs) -> None:
        node: Any = ms_of(attrs)
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = copy.deepcopy(value)
    return mutate


def extra_is(t: dict[str, Any], to: str = "world") -> Callable[[Attrs], None]:
    """A mutation making the additional transformation ``t`` (intrinsic → ``to``)."""
    return setter("coordinateTransformations", 0,
                  value={**t, "input": {"name": "intrinsic"}, "output": {"name": to}})


def add_system(name: str, axes: str) -> Callable[[Attrs], None]:
    return lambda a: ms_of(a)["coordinateSystems"].append(
        {"name": name, "axes": [axis(x) for x in axes]})


def relink_world(attrs: Attrs) -> None:
    """Add back base()'s intrinsic → world transformation (after extra_is replaced it)."""
    ms_of(attrs)["coordinateTransformations"].append(extra(base()))


def both(*mutations: Callable[[Attrs], None]) -> Callable[[Attrs], None]:
    def mutate(attrs: Attrs) -> None:
        for m in mutations:
            m(attrs)
    return mutate


def to_plane(t: dict[str, Any]) -> Callable[[Attrs], None]:
    """The additional transformation ``t`` goes from intrinsic (3-D) to a 2-D system."""
    return both(add_system("plane", "yx"), extra_is(t, to="plane"), relink_world)


E, W = "error", "warning"
DS = ("datasets", 0, "coordinateTransformations", 0)
DS1 = ("datasets", 1, "coordinateTransformations", 0)
EYE3 = [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
BY_DIM = [{"transformation": {"type": "scale", "scale": [1]}, "inputAxes": [0],
           "outputAxes": [0]},
          {"transformation": {"type": "translation", "translation": [10, 20]},
           "inputAxes": [1, 2], "outputAxes": [1, 2]}]

CASES: dict[str, tuple[Callable[[Attrs], None], set[tuple[str, str]]]] = {
    "valid": (lambda a: None, set()),
    # datasets
    "input-path-mismatch": (setter(*DS, "input", value={"path": "s9"}),
                            {("dataset-input", E)}),
    "input-has-name": (setter(*DS, "input", value={"path": "s0", "name": "s0"}),
                       {("dataset-input", W)}),
    "output-has-path": (setter(*DS, "output", value={"name": "intrinsic", "path": "x"}),
                        {("dataset-output", W)}),
    "levels-differ": (setter(*DS1, "output", value={"name": "world"}),
                      {("intrinsic-system", E)}),
    "level-to-nowhere": (setter(*DS1, "output", value={"name": "nowhere"}),
                         {("intrinsic-system", E), ("system-reference", E)}),
    "scale-length": (setter(*DS, "scale", value=[1, 1]), {("transform-dims", E)}),
    "translation-length": (setter(*DS1, "transformations", 1, "translation", value=[0, 1]),
                           {("transform-dims", E)}),
    "translation-first": (setter(*DS1, "transformations", value=[
        {"type": "translation", "translation": [0, 1, 1]}, {"type": "scale", "scale": [1, 2, 2]}]),
        {("dataset-transform", E)}),
    "level-rotation": (setter(*DS, value={"type": "rotation", "rotation": EYE3,
                                          "input": {"path": "s0"},
                                          "output": {"name": "intrinsic"}}),
                       {("dataset-transform", E), ("schema", E)}),
    # coordinate systems
    "system-names": (add_system("world", "yx"), {("system-names", E)}),
    "axis-names": (setter("coordinateSystems", 1, "axes", 2,
                          value={"name": "y", "type": "space", "unit": "nanometer"}),
                   {("axes-names", E)}),
    "axes-order": (setter("coordinateSystems", 1, "axes",
                          value=[axis("y"), axis("x"), axis("c")]), {("axes-order", E)}),
    "two-channels": (both(add_system("wide", "ccyx"),
                          setter("coordinateSystems", 2, "axes", 1,
                                 value={"name": "d", "type": "channel"}),
                          lambda a: ms_of(a)["coordinateTransformations"].append(
                              {"type": "projectAxis", "createdOutputs": [1],
                               "input": {"name": "intrinsic"}, "output": {"name": "wide"}})),
                     {("axes-count", E)}),
    "lonely-system": (add_system("lonely", "yx"), {("graph-connected", E)}),
    "displacement-axis": (setter("coordinateSystems", 1, "axes", 0,
                                 value={"name": "c", "type": "displacement"}),
                          {("field-axis", E)}),
    "displacement-axis-discrete": (setter("coordinateSystems", 1, "axes", 0, value={
        "name": "c", "type": "displacement", "discrete": True}), set()),
    # the multiscale's transformations: references
    "no-intrinsic-end": (setter("coordinateTransformations", 0, "input", value={"name": "world"}),
                         {("multiscale-transform-refs", E), ("graph-connected", E)}),
    "to-nowhere": (setter("coordinateTransformations", 0, "output", value={"name": "nowhere"}),
                   {("system-reference", E), ("graph-connected", E)}),
    "path-outside-labels": (setter("coordinateTransformations", 0, "output",
                                   value={"name": "world", "path": "other/seg"}),
                            {("multiscale-transform-refs", E), ("graph-connected", E)}),
    "label-missing": (setter("coordinateTransformations", 0, "output",
                             value={"name": "world", "path": "labels/none"}),
                      {("system-reference", E), ("graph-connected", E)}),
    # the multiscale's transformations: types and parameters
    "unknown-type": (extra_is({"type": "warp"}), {("transform-type", E), ("schema", E)}),
    "identity": (extra_is({"type": "identity"}), set()),
    "mapAxis": (extra_is({"type": "mapAxis", "mapAxis": [0, 2, 1]}), set()),
    "mapAxis-repeat": (extra_is({"type": "mapAxis", "mapAxis": [0, 0, 1]}),
                       {("transform-axes", E), ("schema", E)}),
    "mapAxis-short": (extra_is({"type": "mapAxis", "mapAxis": [1, 0]}), {("transform-dims", E)}),
    "mapAxis-range": (extra_is({"type": "mapAxis", "mapAxis": [0, 1, 3]}),
                      {("transform-axes", E)}),
    "affine": (extra_is({"type": "affine", "affine": [[1, 0, 0, 0], [0, 1, 0, 5], [0, 0, 1, 5]]}),
               set()),
    "affine-square": (extra_is({"type": "affine", "affine": EYE3}), {("transform-dims", E)}),
    "affine-homogeneous": (extra_is({"type": "affine", "affine": [
        [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]}), {("transform-dims", E)}),
    "affine-ragged": (extra_is({"type": "affine", "affine": [
        [1, 0, 0, 0], [0, 1, 0], [0, 0, 1, 0]]}), {("transform-matrix", E)}),
    "affine-3d-to-2d": (to_plane({"type": "affine", "affine": [[0, 1, 0, 5], [0, 0, 1, 5]]}),
                        set()),
    "rotation": (extra_is({"type": "rotation", "rotation": [[1, 0, 0], [0, 0, -1], [0, 1, 0]]}),
                 set()),
    "rotation-shear": (extra_is({"type": "rotation", "rotation": [
        [1, 0, 0], [0, 1, 1], [0, 0, 1]]}), {("rotation-matrix", E)}),
    "rotation-reflection": (extra_is({"type": "rotation", "rotation": [
        [1, 0, 0], [0, 1, 0], [0, 0, -1]]}), {("rotation-matrix", E)}),
    "byDimension": (extra_is({"type": "byDimension", "transformations": BY_DIM}), set()),
    "byDimension-uncovered": (extra_is({"type": "byDimension", "transformations": BY_DIM[:1]}),
                              {("byDimension-axes", E)}),
    "byDimension-twice": (extra_is({"type": "byDimension", "transformations": [
        BY_DIM[0], BY_DIM[1], {**BY_DIM[0], "outputAxes": [2]}]}), {("byDimension-axes", E)}),
    "byDimension-member-length": (extra_is({"type": "byDimension", "transformations": [
        BY_DIM[0], {**BY_DIM[1], "transformation": {"type": "translation", "translation": [1]}}]}),
        {("transform-dims", E)}),
    "byDimension-input-range": (extra_is({"type": "byDimension", "transformations": [
        {**BY_DIM[0], "inputAxes": [5]}, BY_DIM[1]]}), {("transform-axes", E)}),
    "projectAxis": (to_plane({"type": "projectAxis", "droppedInputs": [0]}), set()),
    "projectAxis-count": (to_plane({"type": "projectAxis", "createdOutputs": [0]}),
                          {("transform-dims", E)}),
    "bijection-dims": (to_plane({"type": "bijection",
                                 "forward": {"type": "scale", "scale": [1, 1, 1]},
                                 "inverse": {"type": "scale", "scale": [1, 1]}}),
                       {("transform-dims", E)}),
    "sequence-empty": (extra_is({"type": "sequence", "transformations": []}), {("sequence", E)}),
    "sequence-inner-dims": (extra_is({"type": "sequence", "transformations": [
        {"type": "scale", "scale": [1, 1, 1]}, {"type": "translation", "translation": [1, 1]}]}),
        {("transform-dims", E)}),
    "displacements-dims": (to_plane({"type": "displacements", "path": "field"}),
                           {("transform-dims", E)}),
    # what only the reader (parse_transform) sees: NaN (not JSON, but Python's json reads
    # it), and a subspace sequence member (a pre-0.6rc0 form, no meaning in 0.6)
    "translation-nan": (extra_is({"type": "translation", "translation": [float("nan"), 1, 1]}),
                        {("transform", E)}),
    "subspace-member": (extra_is({"type": "sequence", "transformations": [
        {"type": "scale", "scale": [1, 2, 2], "inputAxes": [0, 1, 2], "outputAxes": [0, 1, 2]}]}),
        {("ngffcore-support", W)}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_rule(tmp_path: Path, name: str) -> None:
    mutate, expected = CASES[name]
    attrs = base()
    mutate(attrs)
    got, problems = check(tmp_path, attrs)
    assert got == expected, explain(problems)
    assert all(p.path == "zarr.json" for p in problems)


def test_messages_name_the_place_and_the_numbers(tmp_path: Path) -> None:
    attrs = base()
    CASES["affine-homogeneous"][0](attrs)
    _, problems = check(tmp_path / "a", attrs)
    assert [p.message for p in problems] == [
        "ome.multiscales[0].coordinateTransformations[0]: affine has 4 rows but the output has "
        "3 axes: it is stored as 3×4 (the homogeneous last row is omitted)"]
    attrs = base()
    CASES["byDimension-uncovered"][0](attrs)
    _, problems = check(tmp_path / "b", attrs)
    assert problems[0].message == (
        "ome.multiscales[0].coordinateTransformations[0]: output axes 1, 2 of 3 axes in no "
        "transformation's outputAxes; every output axis is in exactly one")


def test_transform_nesting(tmp_path: Path) -> None:
    t: dict[str, Any] = {"type": "identity"}
    for _ in range(40):
        t = {"type": "sequence", "transformations": [t]}
    attrs = base()
    extra_is(t)(attrs)
    got, problems = check(tmp_path, attrs)
    assert got == {("transform-nesting", E)}, explain(problems)


def test_malformed_transformations_do_not_crash(tmp_path: Path) -> None:
    attrs = base()
    ms = ms_of(attrs)
    ms["coordinateTransformations"] = [None, 3, {"type": 5}, {"type": "scale", "scale": "x"},
                                       {"type": "byDimension", "transformations": [1, {}]},
                                       {"type": "affine", "affine": [1, 2]},
                                       {"type": "mapAxis", "mapAxis": [True, 1.5, "a"]},
                                       {"input": [], "output": {"name": 3}}]
    ms["datasets"][0]["coordinateTransformations"] = [{"type": "sequence", "transformations": 7}]
    got, problems = check(tmp_path, attrs)
    assert ("schema", E) in got and ("transform-type", E) in got, explain(problems)
    assert all(p.severity in (E, W) for p in problems)


# -- label references -----------------------------------------------------------------------

def write_label(root: Path, system: str = "physical", axes: str = "cyx") -> None:
    attrs = image_attrs(system, axes)
    attrs["ome"]["image-label"] = {"colors": [{"label-value": 1, "rgba": [0, 0, 255, 255]}]}
    write(root / "labels" / "seg", attrs)
    write_json(root / "labels" / "zarr.json",
               group_doc({"ome": {"version": "0.6rc0", "labels": ["seg"]}}))


@pytest.mark.parametrize(("t", "name", "expected"), [
    ({"type": "identity"}, "physical", set()),
    ({"type": "scale", "scale": [1, 2, 2]}, "physical", set()),
    ({"type": "sequence", "transformations": [{"type": "scale", "scale": [1, 2, 2]},
                                              {"type": "translation", "translation": [0, 1, 1]}]},
     "physical", set()),
    ({"type": "affine", "affine": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]]}, "physical",
     {("labels-transform", E)}),
    ({"type": "identity"}, "nope", {("system-reference", E)}),
    ({"type": "scale", "scale": [1, 2]}, "physical", {("transform-dims", E)}),
], ids=["identity", "scale", "sequence", "affine", "unknown-name", "dims"])
def test_label_reference(tmp_path: Path, t: dict[str, Any], name: str,
                         expected: set[tuple[str, str]]) -> None:
    write_label(tmp_path)
    attrs = base()
    ms_of(attrs)["coordinateTransformations"].append(
        {**t, "input": {"name": "intrinsic"}, "output": {"name": name, "path": "labels/seg"}})
    got, problems = check(tmp_path, attrs)
    assert got == expected, explain(problems)
    assert validate(tmp_path / "labels" / "seg") == []


def test_label_reference_version_must_match(tmp_path: Path) -> None:
    write_label(tmp_path)
    doc = json.loads((tmp_path / "labels/seg/zarr.json").read_text())
    doc["attributes"]["ome"]["version"] = "0.6"
    write_json(tmp_path / "labels/seg/zarr.json", doc)
    attrs = base()
    ms_of(attrs)["coordinateTransformations"].append({
        "type": "identity", "input": {"name": "intrinsic"},
        "output": {"name": "physical", "path": "labels/seg"}})
    got, problems = check(tmp_path, attrs)
    assert got == {("version", E)}, explain(problems)
    assert "'labels/seg'" in problems[0].message


# -- levels, omero, versions, strict ---------------------------------------------------------

def test_levels_against_the_intrinsic_system(tmp_path: Path) -> None:
    attrs = base()
    write_json(tmp_path / "zarr.json", group_doc(attrs))
    for i in range(2):  # 2-D levels for a 3-D intrinsic system
        zarr.create_array(store=str(tmp_path / f"s{i}"), shape=(8 >> i, 8 >> i), chunks=(4, 4),
                          dtype="uint8", zarr_format=3, dimension_names=["a", "b"])
    problems = validate(tmp_path)
    assert {(p.rule, p.path) for p in problems} == {("level-ndim", "s0/zarr.json"),
                                                    ("level-ndim", "s1/zarr.json")}


def test_dimension_names_are_not_compared_in_06(tmp_path: Path) -> None:
    attrs = base()
    write_json(tmp_path / "zarr.json", group_doc(attrs))
    for i in range(2):
        zarr.create_array(store=str(tmp_path / f"s{i}"), shape=(2, 32 >> i, 32 >> i),
                          chunks=(2, 8, 8), dtype="uint8", zarr_format=3,
                          dimension_names=["p", "q", "r"])
    assert validate(tmp_path) == []


def test_omero_channels_use_the_intrinsic_axes(tmp_path: Path) -> None:
    attrs = base()
    window = {"start": 0, "end": 255, "min": 0, "max": 255}
    attrs["ome"]["omero"] = {"channels": [{"color": "FF0000", "window": window}]}
    got, problems = check(tmp_path, attrs)  # the c axis has 2 channels
    assert got == {("omero-channels", W)}, explain(problems)


@pytest.mark.parametrize("version", ["0.6", "0.6rc0"])
def test_both_version_strings_are_06(tmp_path: Path, version: str) -> None:
    attrs = base()
    attrs["ome"]["version"] = version
    assert check(tmp_path, attrs)[0] == set()
    CASES["byDimension-uncovered"][0](attrs)
    assert check(tmp_path, attrs)[0] == {("byDimension-axes", E)}


def test_06_on_zarr_v2_is_refused(tmp_path: Path) -> None:
    write_json(tmp_path / ".zgroup", {"zarr_format": 2})
    write_json(tmp_path / ".zattrs", {"multiscales": [{"version": "0.6rc0", "axes": []}]})
    problems = validate(tmp_path)
    assert [(p.rule, p.severity) for p in problems] == [("version", E)]
    assert "requires Zarr v3" in problems[0].message


def test_scene_before_06_is_refused(tmp_path: Path) -> None:
    write_json(tmp_path / "zarr.json", group_doc({"ome": {"version": "0.5", "scene": {}}}))
    problems = validate(tmp_path)
    assert [(p.rule, p.severity) for p in problems] == [("version", E)]
    assert "new in OME-Zarr 0.6" in problems[0].message


def test_unknown_version_lists_06(tmp_path: Path) -> None:
    attrs = base()
    attrs["ome"]["version"] = "0.7"
    problems = validate(write(tmp_path, attrs))
    assert [p.rule for p in problems] == ["version"]
    assert "0.4, 0.5, 0.6" in problems[0].message


def test_strict_applies_the_strict_axis_types(tmp_path: Path) -> None:
    attrs = base()
    ms_of(attrs).update(type="gaussian", metadata={"method": "test"})
    ms_of(attrs)["coordinateSystems"][1]["axes"][0]["type"] = "angle"  # custom type
    assert check(tmp_path, attrs)[0] == set()
    got, problems = check(tmp_path, attrs, strict=True)
    assert got == {("schema", E)}, explain(problems)
    assert problems[0].message.startswith(
        "ome.multiscales[0].coordinateSystems[1].axes[0].type: 'angle' is not one of")


# -- scenes ---------------------------------------------------------------------------------

def scene(tmp_path: Path, transforms: list[dict[str, Any]], systems: str = "world",
          images: str = "ab") -> Path:
    for name in images:
        write(tmp_path / name, image_attrs("physical", "yx"))
    write_json(tmp_path / "zarr.json", group_doc({"ome": {"version": "0.6rc0", "scene": {
        "coordinateSystems": [{"name": s, "axes": [axis("y"), axis("x")]}
                              for s in systems.split()],
        "coordinateTransformations": transforms}}}))
    return tmp_path


def to_world(path: str, **kw: Any) -> dict[str, Any]:
    return {"type": "translation", "translation": [0, 10], "input": {"name": "physical",
            "path": path}, "output": {"name": "world"}, **kw}


@pytest.mark.parametrize(("transforms", "systems", "expected"), [
    ([to_world("a"), to_world("b")], "world", set()),
    ([to_world("a"), to_world("c")], "world", {("system-reference", E)}),
    ([to_world("a"), to_world("b", input={"name": "nope", "path": "b"})], "world",
     {("system-reference", E)}),
    ([to_world("a"), to_world("b", output={"name": "elsewhere"})], "world",
     {("system-reference", E), ("graph-connected", E)}),
    ([to_world("a"), to_world("b", translation=[1, 2, 3])], "world", {("transform-dims", E)}),
    ([to_world("a"), to_world("b")], "world other", {("graph-connected", E)}),
    ([to_world("a"), to_world("../b")], "world", {("system-reference", E)}),
    ([to_world("a"), {**to_world("b"), "type": "affine", "affine": [[1, 0, 0], [0, 1, 0]]}],
     "world", set()),
], ids=["valid", "no-image", "no-such-system", "no-local-system", "dims", "loose-system",
        "escaping-path", "affine"])
def test_scene_rule(tmp_path: Path, transforms: list[dict[str, Any]], systems: str,
                    expected: set[tuple[str, str]]) -> None:
    problems = validate(scene(tmp_path, transforms, systems))
    assert {(p.rule, p.severity) for p in problems} == expected, explain(problems)


def test_scene_referenced_group_problems(tmp_path: Path) -> None:
    root = scene(tmp_path, [to_world("a"), to_world("b"), to_world("p")], images="ab")
    write_json(root / "p" / "zarr.json", group_doc({"ome": {"version": "0.6rc0", "plate": {}}}))
    (root / "b" / "zarr.json").write_text("{not json")
    problems = validate(root)
    assert {(p.rule, p.path) for p in problems} == {("json", "b/zarr.json"),
                                                    ("system-reference", "zarr.json")}
    messages = " | ".join(p.message for p in problems)
    assert "b/zarr.json is not usable JSON" in messages
    assert "'p': is not a multiscale image" in messages


def test_scene_version_must_match(tmp_path: Path) -> None:
    root = scene(tmp_path, [to_world("a"), to_world("b")])
    write(root / "b", image_attrs("physical", "yx", version="0.6"))
    problems = validate(root)
    assert [(p.rule, p.severity) for p in problems] == [("version", E)]


# -- the command line, schemas ----------------------------------------------------------------

def test_cli_reports_06_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    attrs = base()
    CASES["byDimension-uncovered"][0](attrs)
    root = write(tmp_path / "img", attrs)
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "zarr.json: error: ome.multiscales[0].coordinateTransformations[0]: output axes 1, 2" \
        in out and "[byDimension-axes]" in out
    bad_scene = scene(tmp_path / "scene", [to_world("a"), to_world("c")])
    assert main(["validate", str(bad_scene), "--json"]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert [p["rule"] for p in problems] == ["system-reference"]
    good_scene = scene(tmp_path / "good", [to_world("a"), to_world("b")])
    assert main(["validate", str(good_scene)]) == 0


def test_06_schemas_resolve_offline() -> None:
    """The 0.6 schemas load from the package under both their own (0.6rc0) and the 0.6 URL,
    and their relative $refs (axes.schema, coordinate_systems.schema, ...) resolve."""
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped,unused-ignore]
    from referencing.exceptions import Unresolvable

    schemas = importlib.import_module("ngffcore.ome.validate_schema")
    registry = schemas.registry()
    for version in ("0.6", "0.6rc0"):
        for name in ("image", "scene", "axes", "coordinate_transformations", "strict_image"):
            url = f"https://ngff.openmicroscopy.org/{version}/schemas/{name}.schema"
            Draft202012Validator.check_schema(registry.contents(url))
    scene_schema = schemas.schema_validator("0.6", "scene", False)
    errors = list(scene_schema.iter_errors({"ome": {"version": "0.6rc0", "scene": {
        "coordinateSystems": [{"name": "w", "axes": [{"name": "x", "type": "space"}]}],
        "coordinateTransformations": [{"type": "nope", "input": {}, "output": {}}]}}}))
    assert errors  # the walk went through coordinate_systems, axes and transformations
    with pytest.raises(Unresolvable):
        registry.resolver().lookup("https://ngff.openmicroscopy.org/0.7/schemas/image.schema")
