"""``ngffcore.ome.validate``: the official OME-NGFF schemas (through the spec's own test suites,
written out as real Zarr groups) and every semantic rule, one broken rule at a time.

Level arrays are written with zarr-python; group metadata is written by hand so that each
document is exactly the one under test. The spec data comes from ``tests/data/ngff-spec``
(see its PROVENANCE.md).
"""

from __future__ import annotations

import copy
import importlib
import importlib.resources
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import ngffcore
from ngffcore import NotFoundError, Problem, validate
from spec_json import strip_comments

zarr = pytest.importorskip("zarr")
pytest.importorskip("jsonschema")

SPEC = Path(__file__).resolve().parents[1] / "data" / "ngff-spec"
VERSION = {2: "0.4", 3: "0.5"}
FORMATS = pytest.mark.parametrize("fmt", [2, 3], ids=["v2-0.4", "v3-0.5"])


# -- writing groups ---------------------------------------------------------------------------

def write_json(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


def write_group(root: Path, fmt: int, attributes: dict[str, Any]) -> None:
    """A group whose attributes are exactly ``attributes`` (0.5: they hold ``ome``)."""
    if fmt == 2:
        write_json(root / ".zgroup", {"zarr_format": 2})
        write_json(root / ".zattrs", attributes)
    else:
        write_json(root / "zarr.json",
                   {"zarr_format": 3, "node_type": "group", "attributes": attributes})


def write_array(root: Path, path: str, fmt: int, shape: tuple[int, ...], dtype: str = "uint8",
                dimension_names: list[Any] | None = None) -> None:
    kwargs: dict[str, Any] = {}
    if fmt == 3 and dimension_names is not None:
        kwargs["dimension_names"] = dimension_names
    zarr.create_array(store=str(root / path), shape=shape, chunks=shape, dtype=dtype,
                      zarr_format=fmt, **kwargs)


def spec_level_shapes(axes: Any, datasets: Any) -> list[tuple[str, tuple[int, ...]]]:
    """Shapes that fit a spec document: space axes halve from 32 per level, others stay 2.
    Datasets whose path is not a usable string get no array."""
    typed = isinstance(axes, list) and 0 < len(axes) and all(isinstance(a, dict) for a in axes)
    if typed:
        space = [a.get("type") == "space" for a in axes]
    else:
        space = [True, True]
    out = []
    for i, ds in enumerate(datasets if isinstance(datasets, list) else []):
        path = ds.get("path") if isinstance(ds, dict) else None
        if isinstance(path, str) and path and ".." not in path.split("/"):
            out.append((path, tuple(max(1, 32 >> i) if s else 2 for s in space)))
    return out


def write_spec_group(root: Path, version: str, doc: dict[str, Any]) -> None:
    """A real group for a spec document (0.4: ``.zattrs``; 0.5: ``zarr.json`` attributes or,
    for the examples, the whole ``zarr.json``) with level arrays that fit its axes."""
    if version == "0.4":
        fmt, attributes = 2, doc
        write_group(root, 2, doc)
    else:
        fmt = 3
        if "node_type" in doc:
            attributes = doc["attributes"]
            write_json(root / "zarr.json", doc)
        else:
            attributes = doc
            write_group(root, 3, doc)
    ome = attributes.get("ome", attributes) if fmt == 3 else attributes
    multiscales = ome.get("multiscales") if isinstance(ome, dict) else None
    written = set()
    for ms in multiscales if isinstance(multiscales, list) else []:
        if not isinstance(ms, dict):
            continue
        axes = ms.get("axes")
        names = [a.get("name") for a in axes] if isinstance(axes, list) and all(
            isinstance(a, dict) for a in axes) else None
        for path, shape in spec_level_shapes(axes, ms.get("datasets")):
            if path in written:
                continue
            written.add(path)
            ok_names = (names is not None and len(names) == len(shape)
                        and all(isinstance(n, str) for n in names)
                        and len(set(names)) == len(names))
            write_array(root, path, fmt, shape, dimension_names=names if ok_names else None)


def axis(spec: str) -> dict[str, Any]:
    """``"y:space"`` → an axis dict (space axes get a unit); ``"a"`` → an untyped axis."""
    name, _, kind = spec.partition(":")
    out: dict[str, Any] = {"name": name}
    if kind:
        out["type"] = kind
    if kind == "space":
        out["unit"] = "micrometer"
    return out


class Image:
    """A valid image (group metadata + level arrays) to break one rule of before writing."""

    def __init__(self, fmt: int, axes: tuple[str, ...] = ("c:channel", "y:space", "x:space"),
                 levels: int = 2, dtype: str = "uint8") -> None:
        self.fmt = fmt
        axis_list = [axis(a) for a in axes]
        space = [a.get("type") == "space" for a in axis_list]
        ms: dict[str, Any] = {
            "name": "image",
            "axes": axis_list,
            "datasets": [{"path": f"s{i}", "coordinateTransformations": [
                {"type": "scale", "scale": [0.5 * 2**i if s else 1.0 for s in space]}]}
                for i in range(levels)],
        }
        if fmt == 2:
            ms["version"] = "0.4"
        self.ome: dict[str, Any] = {"multiscales": [ms]}
        names = [a["name"] for a in axis_list]
        self.arrays: dict[str, dict[str, Any]] = {
            f"s{i}": {"shape": tuple(32 >> i if s else 2 for s in space), "dtype": dtype,
                      "dimension_names": names}
            for i in range(levels)}

    @property
    def ms(self) -> dict[str, Any]:
        return self.ome["multiscales"][0]  # type: ignore[no-any-return]

    def write(self, root: Path) -> Path:
        attributes = self.ome if self.fmt == 2 else {"ome": {"version": "0.5", **self.ome}}
        write_group(root, self.fmt, attributes)
        for path, arr in self.arrays.items():
            write_array(root, path, self.fmt, arr["shape"], arr["dtype"],
                        arr["dimension_names"])
        return root


def write_attrs(root: Path, fmt: int, ome: dict[str, Any]) -> Path:
    """A group holding ``ome`` (0.5: under ``attributes["ome"]`` with the version added)."""
    write_group(root, fmt, ome if fmt == 2 else {"ome": {"version": "0.5", **ome}})
    return root


def rules(problems: list[Problem]) -> set[tuple[str, str]]:
    return {(p.rule, p.severity) for p in problems}


def explain(problems: list[Problem]) -> str:
    return "\n".join(map(str, problems))


# -- the spec's own test suites and examples ---------------------------------------------------

def suite_cases() -> list[Any]:
    params = []
    for version in ("0.4", "0.5"):
        for suite in ("image_suite", "strict_image_suite"):
            doc = json.loads((SPEC / version / "tests" / f"{suite}.json").read_text())
            for case in doc["tests"]:
                # every description is "TBD": the case's former file name identifies it
                params.append(pytest.param(version, suite.startswith("strict"), case,
                                           id=f"{version}-{suite}-{case['formerly']}"))
    return params


@pytest.mark.parametrize(("version", "strict", "case"), suite_cases())
def test_spec_suite(tmp_path: Path, version: str, strict: bool, case: dict[str, Any]) -> None:
    write_spec_group(tmp_path, version, case["data"])
    problems = validate(tmp_path, strict=strict)
    schema = [p for p in problems if p.rule == "schema"]
    if case["valid"]:
        assert not schema, explain(problems)
    elif case["formerly"] == "invalid/invalid_version.json":
        # a 0.3 version has no packaged schema: reported as such, not as a schema error
        assert ("version", "error") in rules(problems), explain(problems)
    else:
        assert schema, explain(problems)
        assert all(p.severity == "error" for p in schema)


def test_spec_suites_are_all_run() -> None:
    cases = suite_cases()
    assert len(cases) == 30 + 5 + 28 + 5
    assert sum(not p.values[2]["valid"] for p in cases) == 24 + 23


@pytest.mark.parametrize("version", ["0.4", "0.5"])
@pytest.mark.parametrize("name", ["multiscales_example", "multiscales_transformations"])
def test_spec_examples_are_valid(tmp_path: Path, version: str, name: str) -> None:
    text = (SPEC / version / "examples" / "multiscales_strict" / f"{name}.json").read_text()
    write_spec_group(tmp_path, version, json.loads(strip_comments(text)))
    assert validate(tmp_path, strict=True) == []


def test_valid_case_with_a_semantic_problem(tmp_path: Path) -> None:
    """The 0.4 suite's ``mismatch_axes_units`` passes the schema, but its scale has 2 values
    for 3 axes: only the semantic rule sees it."""
    doc = json.loads((SPEC / "0.4" / "tests" / "image_suite.json").read_text())
    case = next(c for c in doc["tests"] if c["formerly"] == "valid/mismatch_axes_units.json")
    write_spec_group(tmp_path, "0.4", case["data"])
    problems = validate(tmp_path)
    assert rules(problems) == {("transforms-length", "error")}, explain(problems)
    assert "2 values for 3 axes" in problems[0].message
    assert problems[0].path == ".zattrs"


# -- valid groups ------------------------------------------------------------------------------

@FORMATS
def test_valid_image(tmp_path: Path, fmt: int) -> None:
    image = Image(fmt, ("t:time", "c:channel", "z:space", "y:space", "x:space"), levels=3)
    image.ms["coordinateTransformations"] = [{"type": "scale", "scale": [0.1, 1, 1, 1, 1]}]
    image.ms["datasets"][0]["coordinateTransformations"].append(
        {"type": "translation", "translation": [0, 0, 1.5, 2.5, 3.5]})
    image.ome["omero"] = {"channels": [
        {"color": "FF0000", "window": {"start": 0, "end": 200, "min": 0, "max": 255}},
        {"color": "00ff00", "window": {"start": 10, "end": 20, "min": 0, "max": 255}}]}
    assert validate(image.write(tmp_path), strict=False) == []


@FORMATS
def test_valid_label_image(tmp_path: Path, fmt: int) -> None:
    image = Image(fmt, ("y:space", "x:space"), dtype="uint32")
    image.ome["image-label"] = {"colors": [{"label-value": 1, "rgba": [255, 0, 0, 255]},
                                           {"label-value": 2, "rgba": [0, 255, 0, 255]}],
                                "properties": [{"label-value": 1, "area": 12}],
                                "source": {"image": "../../"}}
    if fmt == 2:
        image.ome["image-label"]["version"] = "0.4"
    assert validate(image.write(tmp_path)) == []


PLATE = {"name": "plate", "field_count": 1,
         "acquisitions": [{"id": 0, "name": "a", "maximumfieldcount": 1},
                          {"id": 1, "name": "b", "maximumfieldcount": 1}],
         "rows": [{"name": "A"}, {"name": "B"}], "columns": [{"name": "1"}, {"name": "2"}],
         "wells": [{"path": "A/1", "rowIndex": 0, "columnIndex": 0},
                   {"path": "B/2", "rowIndex": 1, "columnIndex": 1}]}
WELL = {"images": [{"path": "0", "acquisition": 0}, {"path": "1", "acquisition": 1}]}


def plate(fmt: int, **changes: Any) -> dict[str, Any]:
    out = {**copy.deepcopy(PLATE), **changes}
    if fmt == 2:
        out["version"] = "0.4"
    return {"plate": out}


def well(fmt: int, **changes: Any) -> dict[str, Any]:
    out = {**copy.deepcopy(WELL), **changes}
    if fmt == 2:
        out["version"] = "0.4"
    return {"well": out}


@FORMATS
@pytest.mark.parametrize("kind", ["plate", "well", "bf2raw", "bf2raw-plate", "series",
                                  "labels"])
def test_valid_other_groups(tmp_path: Path, fmt: int, kind: str) -> None:
    ome = {"plate": plate(fmt), "well": well(fmt),
           "bf2raw": {"bioformats2raw.layout": 3},
           "bf2raw-plate": {"bioformats2raw.layout": 3, **plate(fmt)},
           "series": {"series": ["0", "1"]},
           "labels": {"labels": ["cells", "nuclei"]}}[kind]
    assert validate(write_attrs(tmp_path, fmt, ome), strict=True) == []


# -- one broken rule at a time -----------------------------------------------------------------

def _axes(*specs: str) -> Callable[[int], Image]:
    return lambda fmt: Image(fmt, specs)


def _changed(change: Callable[[Image], None], *, axes: tuple[str, ...] | None = None
             ) -> Callable[[int], Image]:
    def build(fmt: int) -> Image:
        image = Image(fmt) if axes is None else Image(fmt, axes)
        change(image)
        return image
    return build


def _set_transforms(level: int, transforms: list[dict[str, Any]]) -> Callable[[Image], None]:
    def change(image: Image) -> None:
        image.ms["datasets"][level]["coordinateTransformations"] = transforms
    return change


def _set_array(path: str, **values: Any) -> Callable[[Image], None]:
    return lambda image: image.arrays[path].update(values)


def _label(change: Callable[[dict[str, Any]], None] | None = None, dtype: str = "uint16"
           ) -> Callable[[int], Image]:
    def build(fmt: int) -> Image:
        image = Image(fmt, ("y:space", "x:space"), dtype=dtype)
        label: dict[str, Any] = {"colors": [{"label-value": 1, "rgba": [1, 2, 3, 4]},
                                            {"label-value": 2, "rgba": [5, 6, 7, 8]}]}
        if fmt == 2:
            label["version"] = "0.4"
        if change is not None:
            change(label)
        image.ome["image-label"] = label
        return image
    return build


def _omero(channels: list[dict[str, Any]]) -> Callable[[Image], None]:
    return lambda image: image.ome.update(omero={"channels": channels})


def _channel(color: str = "FFFFFF", **window: float) -> dict[str, Any]:
    return {"color": color, "window": {"start": 0, "end": 10, "min": 0, "max": 255, **window}}


def _rename_x_to_y(image: Image) -> None:
    # a different unit keeps the two axis objects distinct: the schema's uniqueItems passes
    image.ms["axes"][2].update(name="y", unit="nanometer")
    for arr in image.arrays.values():
        arr["dimension_names"] = ["c", "y", "y"]


SCALE3 = {"type": "scale", "scale": [1, 0.5, 0.5]}
SHIFT3 = {"type": "translation", "translation": [0, 1, 1]}

IMAGE_RULES: dict[str, tuple[str, str, Callable[[int], Image]]] = {
    # id: (rule, severity, a builder of an image that breaks only that rule)
    "two-channel-like-axes": ("axes-count", "error",
                              _axes("c:channel", "a:custom", "y:space", "x:space")),
    "two-time-axes": ("axes-count", "error", _axes("t:time", "u:time", "y:space", "x:space")),
    "channel-between-space": ("axes-order", "error", _axes("y:space", "c:channel", "x:space")),
    "space-before-time": ("axes-order", "error", _axes("y:space", "x:space", "t:time")),
    "same-axis-name": ("axes-names", "error", _changed(_rename_x_to_y)),
    "translation-first": ("transforms", "error", _changed(_set_transforms(0, [SHIFT3, SCALE3]))),
    "two-translations": ("transforms", "error", _changed(
        _set_transforms(0, [SCALE3, SHIFT3, SHIFT3]))),
    "multiscale-two-translations": ("transforms", "error", _changed(
        lambda im: im.ms.update(coordinateTransformations=[SCALE3, SHIFT3, SHIFT3]))),
    "scale-length": ("transforms-length", "error", _changed(
        _set_transforms(1, [{"type": "scale", "scale": [1, 1, 1, 1]}]))),
    "translation-length": ("transforms-length", "error", _changed(
        _set_transforms(0, [SCALE3, {"type": "translation", "translation": [1, 1]}]))),
    "multiscale-scale-length": ("transforms-length", "error", _changed(
        lambda im: im.ms.update(coordinateTransformations=[{"type": "scale",
                                                            "scale": [1, 1]}]))),
    "level-ndim": ("level-ndim", "error", _changed(
        _set_array("s1", shape=(16, 16), dimension_names=["y", "x"]))),
    "level-larger": ("level-shapes", "error", _changed(_set_array("s1", shape=(2, 16, 40)))),
    "level-not-downsampled": ("level-shapes", "warning", _changed(
        _set_array("s1", shape=(2, 32, 32)))),
    "level-dtype": ("level-dtype", "error", _changed(_set_array("s1", dtype="uint16"))),
    "level-missing": ("level-array", "error", _changed(lambda im: im.arrays.pop("s1"))),
    "level-path-escapes": ("level-array", "error", _changed(
        lambda im: im.ms["datasets"][1].update(path="../s1"))),
    "label-float": ("label-dtype", "error", _label(dtype="float32")),
    "label-duplicate-value": ("label-values", "error", _label(
        lambda lb: lb["colors"][1].update({"label-value": 1}))),
    "label-fractional-value": ("label-values", "error", _label(
        lambda lb: lb["colors"][1].update({"label-value": 1.5}))),
    "window-start-above-end": ("omero-window", "warning", _changed(
        _omero([_channel(start=20, end=10), _channel()]))),
    "window-min-above-max": ("omero-window", "warning", _changed(
        _omero([_channel(min=300), _channel()]))),
    "omero-color": ("omero-color", "warning", _changed(_omero([_channel("red"), _channel()]))),
    "omero-channel-count": ("omero-channels", "warning", _changed(
        _omero([_channel(), _channel(), _channel()]))),
    "schema-missing-datasets": ("schema", "error", _changed(lambda im: im.ms.pop("datasets"))),
}


@FORMATS
@pytest.mark.parametrize(("rule", "severity", "build"), list(IMAGE_RULES.values()),
                         ids=list(IMAGE_RULES))
def test_image_rule(tmp_path: Path, fmt: int, rule: str, severity: str,
                    build: Callable[[int], Image]) -> None:
    problems = validate(build(fmt).write(tmp_path))
    assert rules(problems) == {(rule, severity)}, explain(problems)


@FORMATS
def test_every_problem_is_reported(tmp_path: Path, fmt: int) -> None:
    """Nothing stops at the first problem: three broken rules, three problems."""
    image = Image(fmt, ("y:space", "c:channel", "x:space"))
    image.arrays["s1"]["dtype"] = "int16"
    image.ms["datasets"][1]["coordinateTransformations"] = [SHIFT3, SCALE3]
    image.arrays.pop("s0")
    problems = validate(image.write(tmp_path))
    assert {p.rule for p in problems} == {"axes-order", "level-array", "transforms"}


@FORMATS
def test_problem_paths_name_the_object(tmp_path: Path, fmt: int) -> None:
    image = Image(fmt)
    image.arrays["s1"]["dtype"] = "uint16"
    image.ms["axes"][2]["name"] = "y"
    image.arrays["s0"]["dimension_names"] = image.arrays["s1"]["dimension_names"] = None
    problems = validate(image.write(tmp_path))
    group_key = ".zattrs" if fmt == 2 else "zarr.json"
    level_key = "s1/.zarray" if fmt == 2 else "s1/zarr.json"
    by_rule = {p.rule: p for p in problems}
    assert by_rule["axes-names"].path == group_key
    assert by_rule["level-dtype"].path == level_key
    prefix = "ome." if fmt == 3 else ""
    assert by_rule["axes-names"].message.startswith(f"{prefix}multiscales[0].axes: ")


def test_dimension_names_mismatch(tmp_path: Path) -> None:
    image = Image(3)
    image.arrays["s0"]["dimension_names"] = ["c", "x", "y"]
    problems = validate(image.write(tmp_path))
    assert rules(problems) == {("dimension-names", "error")}, explain(problems)
    assert problems[0].path == "s0/zarr.json"


def test_dimension_names_missing_is_a_warning(tmp_path: Path) -> None:
    image = Image(3)
    for arr in image.arrays.values():
        arr["dimension_names"] = None
    problems = validate(image.write(tmp_path))
    assert rules(problems) == {("dimension-names", "warning")}, explain(problems)
    assert [p.path for p in problems] == ["s0/zarr.json", "s1/zarr.json"]


@FORMATS
def test_level_ngffcore_cannot_read_is_a_warning(tmp_path: Path, fmt: int) -> None:
    """A level with a codec ngffcore does not implement is valid OME-Zarr: its shape and
    dtype are still checked."""
    root = Image(fmt).write(tmp_path)
    key = root / ("s1/.zarray" if fmt == 2 else "s1/zarr.json")
    doc = json.loads(key.read_text())
    if fmt == 2:
        doc["compressor"] = {"id": "no-such-codec"}
    else:
        doc["codecs"].append({"name": "no-such-codec"})
        doc["codecs"][0]["configuration"] = {"endian": "little"}  # int16 needs it
    doc["data_type" if fmt == 3 else "dtype"] = "int16" if fmt == 3 else "<i2"
    key.write_text(json.dumps(doc))
    problems = validate(root)
    assert rules(problems) == {("ngffcore-support", "warning"), ("level-dtype", "error")}
    assert "no-such-codec" in next(p for p in problems if p.rule == "ngffcore-support").message


@FORMATS
@pytest.mark.parametrize(("text", "rule"), [("{not json", "json"), ('{"zarr_format": 2}', None),
                                            ("[1, 2]", "json")])
def test_bad_level_metadata(tmp_path: Path, fmt: int, text: str, rule: str | None) -> None:
    root = Image(fmt).write(tmp_path)
    (root / ("s1/.zarray" if fmt == 2 else "s1/zarr.json")).write_text(text)
    problems = validate(root)
    assert rules(problems) == {(rule or "array-metadata", "error")}, explain(problems)
    assert all(p.path.startswith("s1/") for p in problems)


@FORMATS
def test_label_image_without_multiscales(tmp_path: Path, fmt: int) -> None:
    label: dict[str, Any] = {"colors": [{"label-value": 1}]}
    if fmt == 2:
        label["version"] = "0.4"
    problems = validate(write_attrs(tmp_path, fmt, {"image-label": label}))
    assert rules(problems) == {("label-image", "error")}, explain(problems)


PLATE_RULES: dict[str, tuple[str, Callable[[int], dict[str, Any]]]] = {
    "well-path-mismatch": ("plate-wells", lambda fmt: plate(fmt, wells=[
        {"path": "A/2", "rowIndex": 0, "columnIndex": 0}])),
    "well-row-out-of-range": ("plate-wells", lambda fmt: plate(fmt, wells=[
        {"path": "C/1", "rowIndex": 2, "columnIndex": 0}])),
    "well-column-out-of-range": ("plate-wells", lambda fmt: plate(fmt, wells=[
        {"path": "A/9", "rowIndex": 0, "columnIndex": 8}])),
    "duplicate-row-name": ("plate-names", lambda fmt: plate(fmt, rows=[
        {"name": "A"}, {"name": "A", "label": "again"}], wells=[
        {"path": "A/1", "rowIndex": 0, "columnIndex": 0}])),
    "duplicate-acquisition": ("plate-acquisitions", lambda fmt: plate(fmt, acquisitions=[
        {"id": 0, "name": "a"}, {"id": 0, "name": "b"}])),
    "duplicate-field": ("well-images", lambda fmt: well(fmt, images=[
        {"path": "0", "acquisition": 0}, {"path": "0", "acquisition": 1}])),
    "labels-not-paths": ("labels", lambda fmt: {"labels": ["cells", 3]}),
}


@FORMATS
@pytest.mark.parametrize(("rule", "build"), list(PLATE_RULES.values()), ids=list(PLATE_RULES))
def test_collection_rule(tmp_path: Path, fmt: int, rule: str,
                         build: Callable[[int], dict[str, Any]]) -> None:
    problems = validate(write_attrs(tmp_path, fmt, build(fmt)))
    assert rules(problems) == {(rule, "error")}, explain(problems)


# -- versions, formats and unreadable metadata -------------------------------------------------

def test_missing_version_v2_is_a_warning(tmp_path: Path) -> None:
    image = Image(2)
    del image.ms["version"]
    problems = validate(image.write(tmp_path))
    assert rules(problems) == {("version", "warning")}, explain(problems)
    assert "checked as 0.4" in problems[0].message


def test_missing_version_v3_is_an_error(tmp_path: Path) -> None:
    root = Image(3).write(tmp_path)
    doc = json.loads((root / "zarr.json").read_text())
    del doc["attributes"]["ome"]["version"]
    (root / "zarr.json").write_text(json.dumps(doc))
    problems = validate(root)
    # the schema says it too ("'version' is a required property")
    assert rules(problems) == {("version", "error"), ("schema", "error")}, explain(problems)


@FORMATS
@pytest.mark.parametrize("version", ["0.9", "0.3", "wrong-format", 0.4])
def test_unusable_version(tmp_path: Path, fmt: int, version: Any) -> None:
    if version == "wrong-format":
        version = "0.5" if fmt == 2 else "0.4"
    image = Image(fmt)
    image.ms["axes"][0]["type"] = "space"  # nothing else is checked, so this goes unseen
    root = image.write(tmp_path)
    if fmt == 2:
        image.ms["version"] = version
        write_group(root, 2, image.ome)
    else:
        write_group(root, 3, {"ome": {**image.ome, "version": version}})
    problems = validate(root)
    assert rules(problems) == {("version", "error")}, explain(problems)
    assert repr(version) in problems[0].message


def test_inconsistent_versions(tmp_path: Path) -> None:
    image = Image(2)
    image.ome["image-label"] = {"version": "0.3", "colors": [{"label-value": 1}]}
    problems = validate(image.write(tmp_path))
    # the 0.4 schema's version enum rejects the 0.3 as well
    assert rules(problems) == {("version", "error"), ("schema", "error")}, explain(problems)


def test_strict_schemas(tmp_path: Path) -> None:
    root = Image(2).write(tmp_path)  # has a name, but no type or metadata
    assert validate(root) == []
    problems = validate(root, strict=True)
    assert rules(problems) == {("schema", "error")}
    assert any("'type' is a required property" in p.message for p in problems)


@FORMATS
def test_zarr_format_argument(tmp_path: Path, fmt: int) -> None:
    root = Image(fmt).write(tmp_path)
    assert validate(root, zarr_format=fmt) == []
    with pytest.raises(NotFoundError):
        validate(root, zarr_format=5 - fmt)
    with pytest.raises(ValueError, match="zarr_format"):
        validate(root, zarr_format=4)


def test_missing_location(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no Zarr group"):
        validate(tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError):
        validate(tmp_path)  # an empty directory is no group either


@pytest.mark.parametrize(("name", "text"), [(".zattrs", "{'single': 'quotes'}"),
                                            ("zarr.json", '{"zarr_format": 3,'),
                                            (".zattrs", '"a string"'),
                                            (".zgroup", "\xff\xfe")])
def test_unparseable_group_json(tmp_path: Path, name: str, text: str) -> None:
    if name != "zarr.json":
        write_group(tmp_path, 2, Image(2).ome)
    (tmp_path / name).write_text(text, encoding="latin-1")
    problems = validate(tmp_path)
    assert ("json", "error") in rules(problems), explain(problems)
    assert next(p for p in problems if p.rule == "json").path == name
    if name != ".zgroup":
        assert len(problems) == 1


@FORMATS
def test_no_ome_metadata(tmp_path: Path, fmt: int) -> None:
    write_group(tmp_path, fmt, {"something": "else"})
    problems = validate(tmp_path)
    assert rules(problems) == {("ome-metadata", "error")}, explain(problems)
    assert "something" in problems[0].message


def test_v3_ome_keys_at_top_level(tmp_path: Path) -> None:
    """What pre-0.5 writers of Zarr v3 did: readable, but not 0.5. The semantic rules still
    run (here they find nothing else)."""
    image = Image(3)
    root = image.write(tmp_path)
    write_group(root, 3, image.ome)
    problems = validate(root)
    assert rules(problems) == {("ome-namespace", "error")}, explain(problems)


def test_v2_group_without_zgroup(tmp_path: Path) -> None:
    root = Image(2).write(tmp_path)
    (root / ".zgroup").unlink()
    problems = validate(root)
    assert rules(problems) == {("zarr-group", "error")}
    assert problems[0].path == ".zgroup"


@FORMATS
def test_location_is_an_array(tmp_path: Path, fmt: int) -> None:
    root = Image(fmt).write(tmp_path)
    problems = validate(root / "s0")
    assert rules(problems) == {("zarr-group", "error")}, explain(problems)
    assert "not a group" in problems[0].message


# -- the result, the package, the schemas ------------------------------------------------------

def test_problem_prints_on_one_line() -> None:
    p = Problem("s1/.zarray", "level 1 has dtype uint16, level 0 has uint8", "level-dtype")
    assert str(p) == ("s1/.zarray: error: level 1 has dtype uint16, level 0 has uint8 "
                      "[level-dtype]")
    w = Problem(".zattrs", "start 20 is above end 10", "omero-window", "warning")
    assert str(w).startswith(".zattrs: warning: ")
    assert p == Problem("s1/.zarray", p.message, "level-dtype", "error")
    with pytest.raises(AttributeError):
        p.rule = "x"  # type: ignore[misc]


def test_schema_messages_are_readable(tmp_path: Path) -> None:
    image = Image(2)
    image.ms["axes"][1]["type"] = 7
    problems = validate(image.write(tmp_path))
    schema = [p for p in problems if p.rule == "schema"]
    assert schema and all("\n" not in p.message and len(p.message) <= 400 for p in schema)
    assert any(p.message.startswith("multiscales[0].axes[1]") for p in schema), explain(schema)


def test_remote_location(tmp_path: Path) -> None:
    """Over HTTP: the same problems, from GETs only (levels asked for together)."""
    from servers import RangeServer

    image = Image(3, levels=3)
    image.arrays["s2"]["dtype"] = "int8"
    image.write(tmp_path / "img")
    with RangeServer(str(tmp_path)) as server:
        problems = validate(f"{server.url}/img", client_options={"allow_http": True})
        methods = server.state.counts()
    assert rules(problems) == {("level-dtype", "error")}, explain(problems)
    assert problems[0].path == "s2/zarr.json"
    assert methods == {"GET": 4}


def test_jsonschema_is_optional(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "jsonschema", None)
    with pytest.raises(ImportError, match=r"pip install 'ngffcore\[validate\]'"):
        validate(Image(2).write(tmp_path))


def test_import_does_not_import_jsonschema() -> None:
    code = ("import sys, ngffcore; ngffcore.ome.validate; "
            "sys.exit(int('jsonschema' in sys.modules or 'referencing' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_exports() -> None:
    assert ngffcore.validate is validate and "validate" in ngffcore.__all__
    assert ngffcore.Problem is Problem and "Problem" in ngffcore.__all__


def test_packaged_schemas_resolve_offline() -> None:
    """Every packaged schema loads from the package data and its $refs resolve from the
    package alone; anything else is refused, never fetched."""
    from jsonschema import Draft202012Validator
    from referencing.exceptions import Unresolvable

    module = importlib.import_module("ngffcore.ome.validate")
    schemas = importlib.import_module("ngffcore.ome.validate_schema")
    root = importlib.resources.files("ngffcore") / "schemas"
    names = {v: sorted(e.name[:-7] for e in (root / v).iterdir() if e.name.endswith(".schema"))
             for v in module.SCHEMA_VERSIONS}
    assert len(names["0.4"]) == 10 and len(names["0.5"]) == 12
    registry = schemas.registry()
    for version, files in names.items():
        for name in files:
            schema = registry.contents(f"https://ngff.openmicroscopy.org/{version}/schemas/"
                                       f"{name}.schema")
            Draft202012Validator.check_schema(schema)
            validator = Draft202012Validator(schema, registry=registry)
            # a ref-following walk: iter_errors resolves every $ref it meets
            list(validator.iter_errors({"ome": {"version": version}, "multiscales": [{}]}))
    with pytest.raises(Unresolvable):
        registry.resolver().lookup("https://ngff.openmicroscopy.org/0.7/schemas/image.schema")
    assert (root / "PROVENANCE.md").is_file()
