"""``ngffcore.validate`` on OME-NGFF 0.6: the spec's own test suites (``tests/attributes``,
``tests/zarr``) and examples, each written out as a real Zarr v3 group over level arrays
(and, for scenes and label references, the groups they reference). The spec data comes from
``tests/data/ngff-spec/0.6`` (see its PROVENANCE.md); the one-rule-at-a-time tests are in
``test_validate_rules_06.py``.

Every invalid case must be rejected; every valid one accepted, except the spec-valid
documents that break a rule of the spec text, listed in :data:`BREAKS` with the rules they
break (each named in docs/ome.md, "Validation (0.6)").
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ngffcore import Problem, validate
from spec_json import strip_comments

zarr = pytest.importorskip("zarr")
pytest.importorskip("jsonschema")

SPEC = Path(__file__).resolve().parents[1] / "data" / "ngff-spec" / "0.6"
ATTRS = SPEC / "tests" / "attributes"
ZARRS = SPEC / "tests" / "zarr"
EXAMPLES = SPEC / "examples"

# spec-valid documents that break a rule of the spec text: case → the rules they break
PLATE_PATH = {"plate-wells"}  # well path is column/row, the text says row/column
BREAKS: dict[str, set[str]] = {
    "spec/valid/image/mismatch_axes_units": {"transform-dims"},  # 2 scale values, 3 axes
    # byDimension (last of a sequence into a 3-D system) covers output axes 0 and 1 only
    "spec/valid/image/multiscales_transform_additional_transforms": {"byDimension-axes"},
    "spec/valid/label/minimal": {"label-image"},  # image-label without multiscales
    "spec/valid/label/minimal_properties": {"label-image"},
    "spec/valid/plate/minimal_acquisitions": PLATE_PATH,
    "spec/valid/plate/minimal_no_acquisitions": PLATE_PATH,
    "spec/valid/plate/non_alphanumeric_row": PLATE_PATH,
    "strict/valid/plate/strict_acquisitions": PLATE_PATH,
    "strict/valid/plate/strict_no_acquisitions": PLATE_PATH,
    # its multiscale transformation starts at "intrinsic", a system it does not define
    "strict/valid/image/image_omero": {"system-reference", "multiscale-transform-refs",
                                       "graph-connected"},
    # the attributes copy only: dataset path "1" with input.path "s1"
    "strict/valid/image/multiscales_example@attributes": {"dataset-input"},
}

# images that scenes (and a label reference) point to: path → (system name, axes)
REFERENCED = {
    "4995115_cropped_400_100_400_400_rot10.zarr": ("rotated", "czyx"),
    "4995115_cropped_700_700_400_400_rot45.zarr": ("rotated", "czyx"),
    "4995115_full.zarr": ("physical", "czyx"),
    **{f"tile_{i}": ("physical", "yx") for i in range(4)},
    "JRC2018F": ("physical", "zyx"),
    "FCWB": ("physical", "zyx"),
    "labels/cell_segmentation": ("physical", "zyx"),
}


# -- writing groups ---------------------------------------------------------------------------

def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def group_doc(attributes: Any) -> dict[str, Any]:
    return {"zarr_format": 3, "node_type": "group", "attributes": attributes}


def axis(letter: str) -> dict[str, Any]:
    kind = {"t": "time", "c": "channel"}.get(letter, "space")
    return {"name": letter, "type": kind, **({"unit": "micrometer"} if kind == "space" else {})}


def image_attrs(system: str, axes: str, levels: int = 2, version: str = "0.6rc0"
                ) -> dict[str, Any]:
    """A valid 0.6 image: one system, levels s0.. halving the space axes."""
    space = [a not in "tc" for a in axes]
    return {"ome": {"version": version, "multiscales": [{
        "name": "image",
        "coordinateSystems": [{"name": system, "axes": [axis(a) for a in axes]}],
        "datasets": [{"path": f"s{i}", "coordinateTransformations": [{
            "type": "scale", "scale": [2.0**i if s else 1.0 for s in space],
            "input": {"path": f"s{i}"}, "output": {"name": system}}]} for i in range(levels)],
    }]}}


def write_levels(root: Path, attributes: Any) -> None:
    """Level arrays that fit each multiscale's intrinsic system (the output of its first
    dataset): space and array axes halve from 32 per level, the others stay 2."""
    ome = attributes.get("ome") if isinstance(attributes, dict) else None
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    for ms in multiscales if isinstance(multiscales, list) else []:
        if not isinstance(ms, dict) or not isinstance(ms.get("datasets"), list):
            continue
        systems = {cs.get("name"): cs.get("axes") for cs in ms.get("coordinateSystems") or []
                   if isinstance(cs, dict)}
        outputs = [t["output"].get("name") for ds in ms["datasets"] if isinstance(ds, dict)
                   for t in ds.get("coordinateTransformations") or []
                   if isinstance(t, dict) and isinstance(t.get("output"), dict)]
        axes = systems.get(outputs[0]) if outputs else None
        space = [isinstance(a, dict) and a.get("type") in ("space", "array") for a in axes] \
            if isinstance(axes, list) else [True, True]
        for i, ds in enumerate(ms["datasets"]):
            path = ds.get("path") if isinstance(ds, dict) else None
            if isinstance(path, str) and path and not (root / path / "zarr.json").exists():
                shape = tuple(max(1, 32 >> i) if s else 2 for s in space)
                zarr.create_array(store=str(root / path), shape=shape, chunks=shape,
                                  dtype="uint8", zarr_format=3)


def write_case(root: Path, doc: dict[str, Any]) -> Path:
    """A group holding ``doc`` (a whole zarr.json if it has a node_type, else its
    attributes), its level arrays, and the images its transformations reference."""
    if "node_type" not in doc:
        doc = group_doc(doc)
    write_json(root / "zarr.json", doc)
    write_levels(root, doc["attributes"])
    text = json.dumps(doc)
    for path, (system, axes) in REFERENCED.items():
        if f'"{path}"' in text:
            attrs = image_attrs(system, axes)
            write_json(root / path / "zarr.json", group_doc(attrs))
            write_levels(root / path, attrs)
    if '"labels/' in text:
        write_json(root / "labels" / "zarr.json",
                   group_doc({"ome": {"version": "0.6rc0", "labels": ["cell_segmentation"]}}))
    return root


def modernize(doc: Any, dataset: bool = False) -> Any:
    """A pre-0.6rc0 document brought to 0.6rc0's reference form: string ``input``/
    ``output`` become objects (a dataset's input ``{"path"}``, every other ``{"name"}``)."""
    if isinstance(doc, list):
        return [modernize(v, dataset) for v in doc]
    if not isinstance(doc, dict):
        return doc
    out = {}
    for key, value in doc.items():
        if key in ("input", "output") and isinstance(value, str):
            out[key] = {"path" if dataset and key == "input" else "name": value}
        else:
            out[key] = modernize(value, key == "datasets" or (
                dataset and key == "coordinateTransformations"))
    return out


def error_rules(problems: list[Problem]) -> set[str]:
    return {p.rule for p in problems if p.severity == "error"}


def explain(problems: list[Problem]) -> str:
    return "\n".join(map(str, problems))


# -- tests/attributes: one group-attributes document per file -----------------------------------

def attribute_cases() -> list[Any]:
    cases = sorted(ATTRS.rglob("*.json"))
    return [pytest.param(f, id=str(f.relative_to(ATTRS).with_suffix(""))) for f in cases]


def conformance(doc: dict[str, Any]) -> tuple[bool, bool]:
    c = doc.get("_conformance", {})
    return c.get("valid", True), c.get("strict", False)


@pytest.mark.parametrize("case", attribute_cases())
def test_attribute_suite(tmp_path: Path, case: Path) -> None:
    doc = json.loads(case.read_text())
    valid, strict = conformance(doc)
    name = str(case.relative_to(ATTRS).with_suffix(""))
    assert valid == ("/valid/" in f"/{name}") and strict == name.startswith("strict/")
    problems = validate(write_case(tmp_path, doc), strict=strict)
    if valid:
        expected = BREAKS.get(name, BREAKS.get(f"{name}@attributes", set()))
        assert error_rules(problems) == expected, explain(problems)
        assert not [p for p in problems if p.severity == "warning"], explain(problems)
    else:
        assert error_rules(problems), explain(problems)


def test_attribute_suite_is_all_run() -> None:
    cases = [json.loads(p.values[0].read_text()) for p in attribute_cases()]
    assert len(cases) == 143
    assert sum(not conformance(c)[0] for c in cases) == 102 + 4


# cases written in a stale form, rejected for that (a version typo, no "ome" namespace); once
# repaired they must still be rejected, for the fault they are about
STALE = {"strict/invalid/plate/missing_acquisition_maximumfieldcount": "version",
         "strict/invalid/plate/missing_name": "version",
         "spec/invalid/image/too_many_space_axes": "version",
         "spec/invalid/well/duplicate_images": "namespace",
         "spec/invalid/well/empty_images": "namespace",
         "spec/invalid/well/non_integer_acquisition_id": "namespace"}


@pytest.mark.parametrize("name", sorted(STALE))
def test_stale_invalid_cases_fail_for_their_own_fault(tmp_path: Path, name: str) -> None:
    doc = json.loads((ATTRS / f"{name}.json").read_text())
    conf = doc.pop("_conformance")
    if STALE[name] == "namespace":
        doc = {"ome": {"version": "0.6rc0", **doc}}
    else:
        doc["ome"]["version"] = "0.6rc0"
    problems = validate(write_case(tmp_path, doc), strict=conf.get("strict", False))
    assert error_rules(problems), explain(problems)
    assert not error_rules(problems) & {"version", "ome-namespace"}, explain(problems)


# invalid cases whose fault is the pre-0.6rc0 string reference itself
STRING_FORM = {"invalid_multiscale_transform_input_output", "scene_input_output_not_object"}


def modernizable_cases() -> list[Any]:
    return [p for p in attribute_cases() if p.values[0].stem not in STRING_FORM
            and modernize(doc := json.loads(p.values[0].read_text())) != doc]


@pytest.mark.parametrize("case", modernizable_cases())
def test_attribute_suite_in_modern_form(tmp_path: Path, case: Path) -> None:
    """Invalid cases that also use the pre-0.6rc0 string references are rejected for
    their other fault too, once the references are objects."""
    doc = json.loads(case.read_text())
    valid, strict = conformance(doc)
    assert not valid
    problems = validate(write_case(tmp_path, modernize(doc)), strict=strict)
    assert error_rules(problems), explain(problems)


def test_string_form_cases(tmp_path: Path) -> None:
    """The two cases about the string form are accepted once it is an object: the string
    form is all that is wrong with them, and it is rejected as written."""
    for name in sorted(STRING_FORM):
        case = next(ATTRS.rglob(f"{name}.json"))
        doc = json.loads(case.read_text())
        as_written = validate(write_case(tmp_path / name / "a", doc))
        assert any("is not of type 'object'" in p.message for p in as_written), name
        assert validate(write_case(tmp_path / name / "b", modernize(doc))) == [], name


# -- tests/zarr: the same kind of cases as .ome.zarr groups ------------------------------------

def zarr_cases() -> list[Any]:
    cases = sorted(ZARRS.rglob("*.ome.zarr"))
    return [pytest.param(z, id=str(z.relative_to(ZARRS))) for z in cases]


def copy_zarr_case(case: Path, root: Path, modern: bool) -> Path:
    root.mkdir()
    text = (case / "zarr.json").read_text()
    try:
        doc = json.loads(text)
    except ValueError:  # two invalid cases are not JSON; copied as they are
        shutil.copyfile(case / "zarr.json", root / "zarr.json")
        return root
    return write_case(root, modernize(doc) if modern else doc)


@pytest.mark.parametrize("case", zarr_cases())
def test_zarr_suite(tmp_path: Path, case: Path) -> None:
    """This suite predates 0.6rc0: its images reference systems and arrays by plain strings,
    which the 0.6rc0 schemas reject; apart from that, valid is valid (less the text-rule
    breaks) and invalid is invalid, as written and once brought to the 0.6rc0 form."""
    name = str(case.relative_to(ZARRS)).removesuffix(".ome.zarr")
    valid, strict = "/valid/" in f"/{name}", name.startswith("strict/")
    as_written = validate(copy_zarr_case(case, tmp_path / "a", modern=False), strict=strict)
    modern = validate(copy_zarr_case(case, tmp_path / "b", modern=True), strict=strict)
    if not valid:
        assert error_rules(as_written), explain(as_written)
        assert error_rules(modern), explain(modern)
        return
    expected = BREAKS.get(name, set())
    assert error_rules(modern) == expected, explain(modern)
    # as written: only the string references are wrong besides
    assert all(p.rule in expected or "is not of type 'object'" in p.message
               for p in as_written if p.severity == "error"), explain(as_written)


def test_zarr_suite_is_all_run() -> None:
    cases = zarr_cases()
    assert len(cases) == 85
    assert sum("/invalid/" in str(p.values[0]) for p in cases) == 64


# -- examples/ ---------------------------------------------------------------------------------

def example_doc(path: Path) -> dict[str, Any]:
    """An example as a group document. The transformations/ ones are bare
    ``{coordinateSystems, coordinateTransformations}`` documents (their .config.json names a
    schema that does not exist): written as a scene, the one place where a group holds
    coordinate systems and transformations between them freely. bijection_verbose.json is a
    lone transformation: given bijection.json's coordinate systems."""
    doc: dict[str, Any] = json.loads(strip_comments(path.read_text()))
    if {"node_type", "ome", "multiscales"} & set(doc):
        return doc
    if path.name == "bijection_verbose.json":
        systems = json.loads((path.parent / "bijection.json").read_text())["coordinateSystems"]
        doc = {"coordinateSystems": systems, "coordinateTransformations": [doc]}
    return {"ome": {"version": "0.6rc0", "scene": doc}}


# example → what validate reports (error rules); absent: accepted
EXAMPLE_ERRORS: dict[str, set[str]] = {
    # the spec's own invalid examples
    "transformations/byDimensionInvalid1": {"transform-axes", "byDimension-axes"},
    "transformations/byDimensionInvalid2": {"byDimension-axes"},
    # examples that contradict the 0.6rc0 schemas or text (see docs/ome.md)
    "transformations/byDimension2": {"schema"},  # 4 space axes: axes.schema allows 2 or 3
    "transformations/projectAxis": {"schema"},  # untyped axes: axes.schema wants space/array
    "transformations/projectAxis2": {"schema"},
    "transformations/mapAxis1": {"schema", "graph-connected"},  # string input/output
    "transformations/byDimensionXarray": {"schema"},  # members without "transformation"
    "transformations/sequenceSubspace1": {"transform-dims"},  # 1-D scale in a 2-D sequence
    "transformations/displacements/displacement_field": {"transform-dims"},  # 2 scales, 3 axes
    "transformations/displacements/multiscales": {"ome-metadata"},  # "ome": "0.6rc0"
    "multiscales_strict/multiscales_example_relative": {"ome-namespace", "transforms",
                                                        "level-array"},  # pre-0.6 layout
}
# checked with the strict schemas: those whose .config.json names strict_image/plate/well
STRICT_EXAMPLES = {"multiscales_strict", "plate_strict", "well_strict"}


def example_cases() -> list[Any]:
    files = sorted(p for p in EXAMPLES.rglob("*.json") if not p.name.startswith("."))
    return [pytest.param(p, id=str(p.relative_to(EXAMPLES).with_suffix(""))) for p in files]


@pytest.mark.parametrize("path", example_cases())
def test_examples(tmp_path: Path, path: Path) -> None:
    name = str(path.relative_to(EXAMPLES).with_suffix(""))
    strict = path.parent.name in STRICT_EXAMPLES and name not in (
        "multiscales_strict/multiscales_reference_to_label")  # no name/type/metadata
    problems = validate(write_case(tmp_path, example_doc(path)), strict=strict)
    assert error_rules(problems) == EXAMPLE_ERRORS.get(name, set()), explain(problems)


def test_examples_are_all_run() -> None:
    names = {p.id for p in example_cases()}
    assert len(names) == 48 - 10  # 10 .config.json
    assert set(EXAMPLE_ERRORS) <= names


def test_referenced_images_are_valid(tmp_path: Path) -> None:
    """The images the harness writes for scenes are themselves valid 0.6 images."""
    for path, (system, axes) in REFERENCED.items():
        root = tmp_path / path
        attrs = image_attrs(system, axes)
        write_json(root / "zarr.json", group_doc(attrs))
        write_levels(root, attrs)
        assert validate(root) == [], path


def test_strict_label_example(tmp_path: Path) -> None:
    """label_strict's config names strict_label only; validate(strict=True) applies
    strict_image to its multiscale too, which lacks the recommended name/type/metadata."""
    path = EXAMPLES / "label_strict" / "colors_properties.json"
    problems = validate(write_case(tmp_path, example_doc(path)), strict=True)
    assert error_rules(problems) == {"schema"}
    assert {p.message.split(": ")[-1] for p in problems} == {
        f"'{key}' is a required property" for key in ("name", "type", "metadata")}


def test_referenced_groups_are_capped(tmp_path: Path) -> None:
    """A scene referencing more groups than validate reads: the first 1024 are read (here
    missing, so each is reported), the rest are said to be unchecked, once."""
    transforms = [{"type": "identity", "input": {"name": "p", "path": f"img{i}"},
                   "output": {"name": "world"}} for i in range(1030)]
    scene = {"coordinateSystems": [{"name": "world", "axes": [axis("y"), axis("x")]}],
             "coordinateTransformations": transforms}
    problems = validate(write_case(tmp_path, {"ome": {"version": "0.6rc0", "scene": scene}}))
    assert sum(p.rule == "system-reference" for p in problems) == 1024
    assert [p.message for p in problems if p.severity == "warning"] == [
        "transformations reference 1030 groups; only the first 1024 were read (references to "
        "the others were not checked)"]
