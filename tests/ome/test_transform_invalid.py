"""Malformed and hostile OME-NGFF 0.6 transformations: the spec test suite's invalid
transform and scene documents (each rejected by ``parse_transform`` with a MetadataError
naming the transform, or listed as a document-level problem for the validator), its valid
ones (accepted), and hostile input — deep nesting, NaN, huge declared lengths, too many
transforms — refused before anything large is built."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import ngffcore
from ngffcore.ome.transforms import (
    MAX_NESTING,
    Transform,
    parse_coordinate_systems,
    parse_transform,
)

SUITE = Path(__file__).resolve().parents[1] / "data" / "ngff-spec" / "0.6" / "tests" / \
    "attributes" / "spec"

#: invalid documents whose problem only the document shows (not one transform): the
#: dataset-context restrictions (a rotation or mapAxis in a dataset's sequence), a string
#: input/output in a scene (read as a name), and missing scene keys
DOCUMENT_LEVEL = {
    "transforms/multiscales_transform_forbidden",
    "transforms/multiscales_transform_forbidden3",
    "scene/scene_input_output_not_object",
    "scene/scene_missing_scene",
    "scene/scene_missing_transformations",
    "scene/scene_missing_version",
}


def _ref_name(ref: Any) -> str | None:
    if isinstance(ref, str):
        return ref
    return ref.get("name") if isinstance(ref, dict) and not ref.get("path") else None


def document_transforms(doc: dict[str, Any], name: str) -> list[Transform]:
    """Parse every transform of a group-attributes document as a reader would: sized by the
    coordinate systems its references name in this document (datasets' by the intrinsic
    system), input and output required at the top level."""
    ome = doc["ome"]
    out = []
    blocks = [(f"multiscales[{i}]", m, True) for i, m in enumerate(ome.get("multiscales", []))]
    if "scene" in ome:
        blocks.append(("scene", ome["scene"], False))
    for where, block, is_image in blocks:
        systems = {s.name: s.ndim for s in parse_coordinate_systems(
            block.get("coordinateSystems", []), f"{name}: {where}.coordinateSystems")}
        if is_image:
            for d, ds in enumerate(block["datasets"]):
                for k, t in enumerate(ds["coordinateTransformations"]):
                    n = systems.get(_ref_name(t.get("output")) or "")
                    out.append(parse_transform(
                        t, f"{name}: {where}.datasets[{d}].coordinateTransformations[{k}]",
                        ndim_in=n, ndim_out=n, require_refs=True))
        for k, t in enumerate(block.get("coordinateTransformations", [])):
            out.append(parse_transform(
                t, f"{name}: {where}.coordinateTransformations[{k}]",
                ndim_in=systems.get(_ref_name(t.get("input")) or ""),
                ndim_out=systems.get(_ref_name(t.get("output")) or ""), require_refs=True))
    return out


def suite_cases(validity: str) -> list[Path]:
    return sorted(p for kind in ("transforms", "scene")
                  for p in (SUITE / validity / kind).glob("*.json"))


def case_id(p: Path) -> str:
    return f"{p.parent.name}/{p.stem}"


@pytest.mark.parametrize("path", suite_cases("invalid"), ids=case_id)
def test_suite_invalid_documents(path: Path) -> None:
    doc = json.loads(path.read_text())
    if case_id(path) in DOCUMENT_LEVEL:
        if "ome" in doc:
            document_transforms(doc, path.name)  # every transform on its own is fine
        return
    with pytest.raises(ngffcore.MetadataError) as info:
        document_transforms(doc, path.name)
    assert str(info.value).startswith(f"{path.name}: "), str(info.value)


@pytest.mark.parametrize("path", suite_cases("valid"), ids=case_id)
def test_suite_valid_documents(path: Path) -> None:
    doc = json.loads(path.read_text())
    assert document_transforms(doc, path.name)


def test_suite_valid_values() -> None:
    doc = json.loads((SUITE / "valid" / "transforms" / "affine.json").read_text())
    s0, s1, s2, shear = document_transforms(doc, "affine.json")
    # s1: scale 2 then + 0.7071; the shear [[3, 0.4, 30], [0.3, 2, 20]] after it
    np.testing.assert_allclose(s1.apply([[1, 1]]), [[2.7071, 2.7071]])
    np.testing.assert_allclose(shear.apply([[1, 2]]), [[3 + 0.8 + 30, 0.3 + 4 + 20]])
    doc = json.loads((SUITE / "valid" / "transforms" / "byDimension.json").read_text())
    lvl, by = document_transforms(doc, "byDimension.json")
    np.testing.assert_allclose(by.apply([[3, 4]]), [[6, -6]])


def test_suite_invalid_messages() -> None:
    """A few of the invalid documents, with what the message must say."""
    expect = {
        "transforms/bad_affine_no_affine": "affine needs its parameters",
        "transforms/bad_affine_no_input_output": "needs 'input' and 'output'",
        "transforms/bad_byDimension_no_input_output_axes": "inputAxes must be a list",
        "transforms/bad_byDimension_wrong axes_type": "axis indices must be integers",
        "transforms/bad_mapaxis": "mapAxis input: 6 dimensions here but 2",
        "transforms/bad_mapaxis2": "not negative",
        "transforms/bad_mapaxis3": "not a permutation",
        "transforms/bad_mapaxis4": "not a permutation",
        "transforms/bad_mapaxis5": "needs its 'mapAxis'",
        "transforms/bad_projectAxis_insert_non_unique": "repeats an index",
        "transforms/bad_projectAxis_insert_too_high_dim": "3 dimensions here but 4",
        "transforms/bad_projectAxis_insert_too_many": "6 dimensions here but 4",
        "transforms/bad_projectAxis_missing_op": "needs droppedInputs or createdOutputs",
        "transforms/bad_projectAxis_remove_non_unique": "repeats an index",
        "transforms/bad_projectAxis_remove_too_high_dim": r"droppedInputs \[5\] refers to axes",
        "transforms/bad_projectAxis_remove_too_many": r"droppedInputs \[0, 1, 2, 3\] refers",
        "transforms/bad_rotation": "list of rows",
        "transforms/bad_rotation2": "rotation needs its parameters",
        "transforms/bad_rotation3": "rotation matrix is 2×3",
        "transforms/bad_scale_path_not_allowed": "'path' is not allowed",
        "transforms/bad_translate_path_not_allowed": "'path' is not allowed",
        "transforms/multiscales_transform_forbidden2": "affine matrix is 3×3: 3 columns",
        "transforms/multiscales_transform_missing_params": "affine needs its parameters",
        "transforms/multiscales_transform_no_input_output": "needs 'input' and 'output'",
        "transforms/multiscales_transform_no_input_output2": "needs 'input' and 'output'",
        "scene/scene_bijection_forward_missing_params": "scale needs its 'scale'",
        "scene/scene_bijection_inverse_missing_params": "needs a 'forward'",
    }
    for p in suite_cases("invalid"):
        if case_id(p) in DOCUMENT_LEVEL:
            continue
        with pytest.raises(ngffcore.MetadataError, match=expect[case_id(p)]):
            document_transforms(json.loads(p.read_text()), p.name)


# ---------------------------------------------------------------- malformed, one by one


@pytest.mark.parametrize("doc, message", [
    ([], "must be an object"),
    ({}, "needs a string 'type'"),
    ({"type": 3}, "needs a string 'type'"),
    ({"type": "scale", "scale": [1, 2], "name": 5}, "'name' must be a string"),
    ({"type": "scale", "scale": []}, "non-empty list"),
    ({"type": "scale", "scale": "1,2"}, "non-empty list"),
    ({"type": "scale", "scale": [1, "2"]}, "not a finite number"),
    ({"type": "scale", "scale": [1, True]}, "not a finite number"),
    ({"type": "scale", "scale": [1, float("nan")]}, "not a finite number"),
    ({"type": "translation", "translation": [float("inf")]}, "not a finite number"),
    ({"type": "translation", "translation": [1], "path": "t"}, "'path' is not allowed"),
    ({"type": "affine", "affine": [[1, 0, 0]], "path": "p"}, "only one is allowed"),
    ({"type": "affine", "affine": [[1, 0, 0], [0, 1]]}, "not a rectangular matrix"),
    ({"type": "affine", "affine": [1, 0, 0]}, "list of rows"),
    ({"type": "affine", "affine": [[1]]}, "needs ndim_in \\+ 1 ≥ 2 columns"),
    ({"type": "affine", "affine": [[1, 0, float("nan")]]}, "not a finite number"),
    ({"type": "affine", "path": ""}, "non-empty string 'path'"),
    ({"type": "rotation", "rotation": [[1, 1], [0, 1]]}, "not orthonormal"),
    ({"type": "rotation", "rotation": [[0, 1], [1, 0]]}, "determinant 1"),
    ({"type": "mapAxis", "mapAxis": [0, 1.0]}, "must be integers"),
    ({"type": "mapAxis", "mapAxis": {"x": "y"}}, "list of axis indices"),
    ({"type": "mapAxis", "mapAxis": []}, "1 to 32"),
    ({"type": "projectAxis", "droppedInputs": [0], "createdOutputs": "1"}, "list of axis"),
    ({"type": "sequence"}, "non-empty 'transformations'"),
    ({"type": "sequence", "transformations": []}, "non-empty 'transformations'"),
    ({"type": "sequence", "transformations": [3]}, r"transformations\[0\].*must be an object"),
    ({"type": "byDimension", "transformations": [{"inputAxes": [0], "outputAxes": [0]}]},
     "needs 'transformation'"),
    ({"type": "byDimension", "transformations": [
        {"transformation": {"type": "scale", "scale": [2]}, "inputAxes": [0, 1],
         "outputAxes": [0]}]}, "scale input: 1 dimensions here but 2"),
    ({"type": "byDimension", "transformations": [
        {"transformation": {"type": "scale", "scale": [2, 2]}, "inputAxes": [0, 0],
         "outputAxes": [0, 1]}]}, "repeats an axis"),
    ({"type": "byDimension", "transformations": [
        {"transformation": {"type": "scale", "scale": [2]}, "inputAxes": [0],
         "outputAxes": [1]}]}, r"leaves output axes \[0\] unwritten"),
    ({"type": "byDimension", "transformations": ["x"]}, "must be an object"),
    ({"type": "bijection", "forward": {"type": "identity"}}, "needs a 'inverse'"),
    ({"type": "bijection", "forward": {"type": "scale", "scale": [1, 2]},
      "inverse": {"type": "scale", "scale": [1]}}, "bijection"),
])
def test_malformed(doc: object, message: str) -> None:
    with pytest.raises(ngffcore.MetadataError, match=message) as info:
        parse_transform(doc, "some.zarr/zarr.json: ct[0]")
    assert str(info.value).startswith("some.zarr/zarr.json: ct[0]")


def test_dimension_mismatches_name_the_transform() -> None:
    where = "http://host/img.zarr/zarr.json: multiscales[0].datasets[1].coordinateTransformations[0]"
    cases = [({"type": "scale", "scale": [1, 2, 3]}, 2, 2),
             ({"type": "translation", "translation": [1]}, 2, 2),
             ({"type": "mapAxis", "mapAxis": [1, 0]}, 3, 3),
             ({"type": "affine", "affine": [[1, 0, 0], [0, 1, 0]]}, 3, 2),
             ({"type": "affine", "affine": [[1, 0, 0], [0, 1, 0]]}, 2, 3),
             ({"type": "rotation", "rotation": [[1, 0], [0, 1]]}, 3, 3),
             ({"type": "identity"}, 2, 3),
             ({"type": "projectAxis", "createdOutputs": [0]}, 2, 2),
             ({"type": "projectAxis", "droppedInputs": [2]}, 2, 1),
             ({"type": "byDimension", "transformations": [
                 {"transformation": {"type": "scale", "scale": [2]}, "inputAxes": [3],
                  "outputAxes": [0]}]}, 2, 1),
             ({"type": "sequence", "transformations": [{"type": "scale", "scale": [1, 2]}]},
              3, 3)]
    for doc, n_in, n_out in cases:
        with pytest.raises(ngffcore.MetadataError) as info:
            parse_transform(doc, where, ndim_in=n_in, ndim_out=n_out)
        assert str(info.value).startswith(where), (doc, str(info.value))


def test_unknown_type_is_unsupported() -> None:
    with pytest.raises(ngffcore.UnsupportedError, match="unknown coordinate transformation "
                                                        "type 'warp'") as info:
        parse_transform({"type": "warp"}, "doc: ct[2]")
    assert isinstance(info.value, ngffcore.MetadataError)
    # inside a wrapper, the message names the member
    with pytest.raises(ngffcore.UnsupportedError, match=r"doc: ct\[2\].forward: unknown"):
        parse_transform({"type": "bijection", "forward": {"type": "warp"},
                         "inverse": {"type": "identity"}}, "doc: ct[2]")


# ---------------------------------------------------------------- hostile


def nested(depth: int) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "scale", "scale": [2.0]}
    for k in range(depth):
        doc = {"type": ("sequence", "bijection", "byDimension")[k % 3],
               "transformations": [doc] if k % 3 == 0 else [
                   {"transformation": doc, "inputAxes": [0], "outputAxes": [0]}],
               "forward": doc, "inverse": {"type": "identity"}}
    return doc


def test_nesting_limit() -> None:
    t = parse_transform(nested(MAX_NESTING), "deep")
    np.testing.assert_allclose(t.apply([[1.0]]), [[2.0]])
    with pytest.raises(ngffcore.MetadataError, match="nest deeper than 32"):
        parse_transform(nested(MAX_NESTING + 1), "deep")
    # far deeper than Python's recursion limit: refused at depth 33, no RecursionError
    deep: dict[str, Any] = {"type": "identity"}
    for _ in range(100_000):
        deep = {"type": "sequence", "transformations": [deep]}
    with pytest.raises(ngffcore.MetadataError, match="nest deeper"):
        parse_transform(deep, "deep")


def test_huge_declared_lengths_are_refused_before_building() -> None:
    big = [1.0] * 1_000_000
    cases = [{"type": "scale", "scale": big}, {"type": "translation", "translation": big},
             {"type": "mapAxis", "mapAxis": list(range(1_000_000))},
             {"type": "affine", "affine": [[1.0] * 3] * 100_000},
             {"type": "affine", "affine": [[1.0] * 100_000] * 2},
             {"type": "projectAxis", "createdOutputs": [10**9]},
             {"type": "byDimension", "transformations": [
                 {"transformation": {"type": "identity"}, "inputAxes": [0],
                  "outputAxes": [10**12]}]}]
    start = time.perf_counter()
    for doc in cases:
        with pytest.raises(ngffcore.MetadataError):
            parse_transform(doc, "big")
    assert time.perf_counter() - start < 2.0
    # sizes from the caller are bounded too: no (10⁹ + 1)² identity matrix
    for n in (10**9, 0, -1, 2.0, True):
        with pytest.raises(ngffcore.MetadataError, match="big: the input coordinate system"):
            parse_transform({"type": "identity"}, "big", ndim_in=n)  # type: ignore[arg-type]


def test_too_many_transforms() -> None:
    many = {"type": "sequence", "transformations": [{"type": "identity"}] * 20_000}
    with pytest.raises(ngffcore.MetadataError, match="more than 10000 transformations"):
        parse_transform(many, "many")


def test_huge_matrix_from_a_path_is_refused() -> None:
    t = parse_transform({"type": "affine", "path": "m"}, "w",
                        load_field=lambda p: np.zeros((1000, 1001)))
    with pytest.raises(ngffcore.MetadataError, match="at most 33 rows"):
        t.apply([[0.0]])
    t = parse_transform({"type": "affine", "path": "m"}, "w",
                        load_field=lambda p: np.array([[1.0, np.inf]]))
    with pytest.raises(ngffcore.MetadataError, match="NaN or infinite"):
        t.to_matrix()
